"""The ``sparring`` command line: a table of commands, one module each with its arguments
and its run.

Exit codes: 0 every conversation finished (whatever its outcome); 1 a conversation
ended in error, transcripts could not be written, or an internal failure; 2 nothing could
start: bad input (scenario, option), a missing model, no engine or an unreachable server;
130 interrupted (Ctrl-C or SIGTERM). ``--debug`` adds tracebacks, never changes the code.

Starting is cheap: a command's module imports the machinery it drives inside its run, so
``sparring --version`` or ``sparring validate`` never loads an engine's client, and only
the commands that rate or report load the numerical stack.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import signal
import sys
import traceback
from collections.abc import Coroutine, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from runner import __version__
from runner.cli.options import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, backend, common
from runner.terminal import printable

if TYPE_CHECKING:
    import asyncio

    from rich.console import Console

# In the order ``sparring --help`` lists them.
COMMANDS = (
    "run",
    "tournament",
    "leaderboard",
    "validate",
    "models",
    "schema",
    "show",
    "report",
    "rerun",
)


def command(name: str) -> ModuleType:
    """The module of command ``name``: ``HELP``, ``ENGINE``, ``add_arguments``, ``run``."""
    return importlib.import_module(f"runner.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    shared, engine = common(), backend()
    parser = argparse.ArgumentParser(
        prog="sparring",
        description="Multi-agent conversations between language models, from YAML scenarios.",
        parents=[shared],
    )
    parser.add_argument("--version", action="version", version=f"sparring {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = command(name)
        parents = [shared, engine] if module.ENGINE else [shared]
        module.add_arguments(sub.add_parser(name, parents=parents, help=module.HELP))
    return parser


class _Stopper:
    """Ctrl-C and SIGTERM stop a run like cancellation: every transcript gets its end line.

    The signals are handled by the event loop, so they never interrupt code half-way (a
    second Ctrl-C while transcripts are being closed is acknowledged, not raised).
    """

    def __init__(self, task: asyncio.Task[int], err: Console) -> None:
        self.task, self.err, self.stopping = task, err, False

    def __call__(self) -> None:
        if self.stopping:
            self.err.print("still closing transcripts; they will be valid in a moment")
            return
        self.stopping = True
        self.task.cancel()


async def _stoppable(run: Coroutine[Any, Any, int], err: Console) -> int:
    import asyncio

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        stopper = _Stopper(task, err)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stopper)
    return await run


def _fail(args: argparse.Namespace, code: int, lines: Sequence[str]) -> int:
    """One readable line per problem on stderr (and the traceback with --debug)."""
    if args.debug:
        traceback.print_exc()
    for line in lines:
        # An indented line goes on explaining the one above it.
        prefix = "" if line.startswith("  ") else "sparring: "
        print(f"{prefix}{printable(line)}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # After parsing: --version and --help need none of these.
    import asyncio

    from agents.errors import ConfigError, SparringError
    from runner import logs
    from runner.console import console
    from runner.transcript.writer import TranscriptWriteError

    logs.configure(fmt=args.log_format, verbose=args.verbose, debug=args.debug)
    # Bound to the streams as they are now, not looked up at each print.
    out, err = console(sys.stdout), console(sys.stderr)
    try:
        run = command(args.command).run(args, out, err)
        if inspect.iscoroutine(run):
            return asyncio.run(_stoppable(run, err))
        return int(run)
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print("interrupted: open transcripts were closed with status 'cancelled'")
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        return _fail(args, EXIT_USAGE, exc.problems)
    except TranscriptWriteError as exc:  # disk full mid-run: what was written stays valid
        return _fail(args, EXIT_FAILED, [str(exc)])
    except SparringError as exc:  # a BackendError here came before any conversation started
        return _fail(args, EXIT_USAGE, [str(exc)])
    except Exception as exc:
        message = f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)"
        return _fail(args, EXIT_FAILED, [message])
