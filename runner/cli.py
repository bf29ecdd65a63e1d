"""The ``sparring`` command line: argument parsing that calls the packages doing the work.

Exit codes: 0 every conversation finished (whatever its outcome); 1 a conversation
ended in error, transcripts could not be written, or an internal failure; 2 nothing could
start: bad input (scenario, option), a missing model, no engine or an unreachable server;
130 interrupted (Ctrl-C or SIGTERM). ``--debug`` adds tracebacks, never changes the code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console

from agents.backends import CHOICES, choose_backend, create_backend
from agents.backends.base import BackendSettings, Timeouts
from agents.errors import ConfigError, SparringError
from runner import __version__, logs
from runner.analysis import command as report_command
from runner.batch import run_batch
from runner.console import console, models_table, show_transcript
from runner.generate import RetryPolicy
from runner.preview import preview
from runner.replay import rerun
from runner.scenario import MAX_REPEAT, MAX_TURNS, ResolvedScenario, load_scenario
from runner.scenario import json_schema as scenario_schema
from runner.settings import RunSettings
from runner.source import read_yaml
from runner.terminal import printable
from runner.tournament import commands as tournament_commands
from runner.tournament.games import all_games
from runner.tournament.play import PlaySettings
from runner.tournament.spec import json_schema as tournament_schema
from runner.tournament.spec import load_tournament
from runner.transcript import TranscriptWriteError, read_transcript, transcript_paths
from runner.transcript import json_schema as transcript_schema

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

log = structlog.get_logger("sparring.cli")


def _count(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"expected a number from 1 to {limit}, got {text}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 86400, got {text}")
    return value


def _seed(text: str) -> int:
    return 0 if text.strip() == "0" else _count(2**63 - 1)(text)


def _var(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _model(text: str) -> tuple[str | None, str]:
    """``AGENT=MODEL`` for one agent, or ``MODEL`` for every agent."""
    agent, sep, model = text.partition("=")
    if not sep:
        return None, text.strip()
    if not agent.strip() or not model.strip():
        raise argparse.ArgumentTypeError(f"expected AGENT=MODEL or MODEL, got {text!r}")
    return agent.strip(), model.strip()


def _shared() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    common.add_argument(
        "--log-format",
        choices=("console", "json"),
        help="operational logs on stderr (default: console on a terminal, json otherwise)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", help="info-level logs on a terminal"
    )
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument(
        "--backend",
        choices=CHOICES,
        help="engine to use (default: the scenario's, else auto: "
        "ollama if a server answers, else the embedded engine)",
    )
    backend.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="URL",
        help="server address; repeat for several OpenAI-compatible hosts (default: OLLAMA_HOST)",
    )
    backend.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding an API key (openai)"
    )
    return common, backend


def _add_run(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    run = sub.add_parser("run", parents=parents, help="run scenarios")
    run.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    _add_inputs(run)
    _add_limits(run)
    run.add_argument(
        "--max-conversations",
        type=_count(MAX_REPEAT),
        metavar="N",
        help="conversations alive at once, each with an open transcript (default: enough to "
        "keep every server slot busy, within the open-file limit)",
    )
    run.add_argument(
        "--out", metavar="DIR", type=Path, default=Path("transcripts"), help="transcript folder"
    )
    run.add_argument("--pull", action="store_true", help="pull missing models (ollama)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="validate, choose backends and check models; do not chat",
    )
    run.add_argument("--quiet", action="store_true", help="print only the summary")
    run.add_argument(
        "--show-prompts",
        action="store_true",
        help="print each agent's first request as its engine would receive it "
        "(implies --dry-run: nothing is sent to a model)",
    )


def _add_inputs(run: argparse.ArgumentParser) -> None:
    """What to run: changes to the scenarios, all recorded as overrides."""
    run.add_argument(
        "--repeat", type=_count(MAX_REPEAT), metavar="N", help="run each scenario N times"
    )
    run.add_argument("--seed", metavar="N", type=_seed, help="base seed (overrides the scenario's)")
    run.add_argument(
        "--var", type=_var, action="append", default=[], metavar="KEY=VALUE",
        help="set a scenario variable",
    )  # fmt: skip
    run.add_argument(
        "--model", type=_model, action="append", default=[], metavar="[AGENT=]MODEL",
        help="use MODEL for AGENT, or for every agent (repeatable)",
    )  # fmt: skip
    run.add_argument(
        "--max-turns", metavar="N", type=_count(MAX_TURNS), help="override the scenario's max_turns"
    )


def _add_rerun(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    rerun = sub.add_parser(
        "rerun", parents=parents, help="play one transcript's conversation again"
    )
    rerun.add_argument("transcript", metavar="TRANSCRIPT", help="a JSONL transcript")
    _add_limits(rerun)
    rerun.add_argument(
        "--out", metavar="DIR", type=Path, default=Path("transcripts"), help="transcript folder"
    )
    rerun.add_argument("--pull", action="store_true", help="pull missing models (ollama)")
    rerun.add_argument("--quiet", action="store_true", help="print only the summary")


def _add_limits(run: argparse.ArgumentParser) -> None:
    """How hard to push the servers, and how long to wait for them."""
    run.add_argument(
        "--concurrency",
        type=_count(4096),
        metavar="N",
        help="requests in flight per server or model (default: the backend's parallel slots: "
        "OLLAMA_NUM_PARALLEL or 1 for ollama, 4 per host for openai, 1 per embedded model)",
    )
    run.add_argument(
        "--retries", metavar="N", type=_count(100), default=5, help="attempts per turn (default 5)"
    )
    run.add_argument(
        "--backoff",
        metavar="SECONDS",
        type=_seconds,
        default=1.0,
        help="first retry wait in seconds, doubled each retry, with jitter (default 1)",
    )
    timeouts = Timeouts()
    for name, default, what in (
        ("connect", timeouts.connect, "seconds"),
        ("first-token", timeouts.first_token, "seconds, includes model loading"),
        ("reply", timeouts.reply, "seconds for a whole reply"),
    ):
        run.add_argument(
            f"--timeout-{name}", metavar="SECONDS", type=_seconds, default=default,
            help=f"{what} (default {default:g})",
        )  # fmt: skip


def _add_tournament(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    backend: argparse.ArgumentParser,
) -> None:
    tournament = sub.add_parser("tournament", parents=[common], help="run and follow tournaments")
    verbs = tournament.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser("run", parents=[common, backend], help="run (or resume) a tournament")
    run.add_argument("file", type=Path, metavar="FILE", help="tournament YAML file")
    run.add_argument("--out", type=Path, required=True, metavar="DIR", help="tournament folder")
    run.add_argument("--dry-run", action="store_true", help="check models, print the plan")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--pull", action="store_true", help="pull missing models (ollama)")
    run.add_argument(
        "--max-loaded", type=_count(64), metavar="N",
        help="models a server keeps loaded at once, the judge's included (default 3 for ollama)",
    )  # fmt: skip
    run.add_argument(
        "--max-errors", type=_count(1_000_000), metavar="N", help="stop after N games in error"
    )
    run.add_argument(
        "--accept-changes", action="store_true",
        help="go on although the tournament file changed since DIR was started",
    )  # fmt: skip
    run.add_argument(
        "--retry-errors", action="store_true", help="play games that ended in error again"
    )
    _add_limits(run)
    status = verbs.add_parser("status", parents=[common], help="a tournament's progress, from disk")
    status.add_argument("folder", type=Path, metavar="DIR")
    status.add_argument("--format", choices=("table", "json"), default="table")
    board = sub.add_parser("leaderboard", parents=[common], help="ratings from a tournament folder")
    board.add_argument("folder", type=Path, metavar="DIR")
    board.add_argument("--format", choices=("table", "json", "csv"), default="table")
    board.add_argument("--rounds", type=_count(100_000), default=1000, help="bootstrap rounds")
    board.add_argument("--seed", type=_seed, help="bootstrap seed (default: the tournament's)")


def build_parser() -> argparse.ArgumentParser:
    common, backend = _shared()
    parser = argparse.ArgumentParser(
        prog="sparring",
        description="Multi-agent conversations between language models, from YAML scenarios.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"sparring {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub, [common, backend])
    _add_tournament(sub, common, backend)
    validate = sub.add_parser("validate", parents=[common], help="check scenario files")
    validate.add_argument("files", nargs="+", metavar="FILE")
    sub.add_parser("models", parents=[common, backend], help="list the backend's models")
    schema = sub.add_parser(
        "schema", parents=[common], help="print the JSON Schema of scenarios or transcript lines"
    )
    schema.add_argument("what", choices=("scenario", "tournament", "transcript"))
    show = sub.add_parser("show", parents=[common], help="print a transcript readably")
    show.add_argument(
        "transcripts", nargs="+", metavar="TRANSCRIPT", help="JSONL files or folders of them"
    )

    report = sub.add_parser(
        "report", parents=[common], help="compare models from transcripts: HTML, JSON or CSV"
    )
    report_command.add_arguments(report)
    _add_rerun(sub, [common, backend])
    return parser


# ---------------------------------------------------------------------------- commands


def _load_all(files: Sequence[str], **overrides: object) -> list[ResolvedScenario]:
    scenarios, problems = [], []
    for file in files:
        try:
            scenarios.append(load_scenario(file, **overrides))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return scenarios


def cmd_validate(args: argparse.Namespace, out: Console) -> int:
    failed = False
    for file in args.files:
        try:
            said = _validated(file)
        except ConfigError as exc:
            failed = True
            for problem in exc.problems:
                print(printable(problem), file=sys.stderr)
            continue
        out.print(printable(f"ok  {file}: {said}"))
    return EXIT_USAGE if failed else EXIT_OK


def _validated(file: str) -> str:
    """What a valid scenario or tournament file holds, in a line; ConfigError if invalid."""
    if _is_tournament(file):
        t = load_tournament(file)
        entrants = ", ".join(e.name for e in t.entrants)
        return f"tournament {t.name}: {entrants}; {len(all_games(t))} games of {t.scenario.name}"
    s = load_scenario(file)
    agents = ", ".join(f"{a.name} ({a.model})" for a in s.agents)
    return f"{s.name}: {agents}; {s.order}, max {s.max_turns} turns"


def _is_tournament(file: str) -> bool:
    """A mapping with ``entrants`` is a tournament file (read safely; errors come later)."""
    try:
        data, _ = read_yaml(file, "a scenario or tournament")
    except ConfigError:
        return False
    return "entrants" in data


def _settings(args: argparse.Namespace, **extra: Any) -> RunSettings:
    """The engine options ``run`` and ``tournament run`` share, plus ``extra``."""
    return RunSettings(
        out_dir=args.out,
        timeouts=Timeouts(
            connect=args.timeout_connect,
            first_token=args.timeout_first_token,
            reply=args.timeout_reply,
        ),
        retry=RetryPolicy(attempts=args.retries, base=args.backoff),
        concurrency=args.concurrency,
        backend=args.backend,
        hosts=tuple(args.host),
        api_key_env=args.api_key_env,
        pull=args.pull,
        **extra,
    )


async def cmd_run(args: argparse.Namespace, out: Console, err: Console) -> int:
    scenarios = _load_all(
        args.files,
        vars=dict(args.var),
        models=dict(args.model),
        seed=args.seed,
        repeat=args.repeat,
        max_turns=args.max_turns,
    )
    if args.show_prompts:
        settings = _settings(args, max_conversations=args.max_conversations)
        await preview(scenarios, settings, out)
        return EXIT_OK
    failed = await run_batch(
        scenarios,
        _settings(args, max_conversations=args.max_conversations),
        out=out,
        err=err,
        quiet=args.quiet,
        dry_run=args.dry_run,
    )
    return EXIT_FAILED if failed else EXIT_OK


async def cmd_models(args: argparse.Namespace, out: Console) -> int:
    settings = BackendSettings(hosts=tuple(args.host), api_key_env=args.api_key_env)
    choice = await choose_backend(args.backend or "auto", settings)
    backend = create_backend(choice.name, settings)
    try:
        models = await backend.list_models()
    finally:
        await backend.aclose()
    models_table(out, choice.name, backend.host, models)
    return EXIT_OK


def _play_settings(args: argparse.Namespace) -> PlaySettings:
    return PlaySettings(
        out=args.out,
        run=_settings(args),
        max_loaded=args.max_loaded,
        max_errors=args.max_errors,
        accept_changes=args.accept_changes,
        retry_errors=args.retry_errors,
    )


async def cmd_tournament(args: argparse.Namespace, out: Console, err: Console) -> int:
    failed = await tournament_commands.run(
        args.file, _play_settings(args), out=out, err=err, dry_run=args.dry_run, quiet=args.quiet
    )
    return EXIT_FAILED if failed else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    schemas = {
        "scenario": scenario_schema,
        "tournament": tournament_schema,
        "transcript": transcript_schema,
    }
    schema = schemas[args.what]()
    sys.stdout.write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: Console) -> int:
    for i, path in enumerate(transcript_paths(args.transcripts)):
        if i and out.is_terminal:
            out.rule()
        elif i:  # a rule spans the console, which has no width on a pipe
            out.print("─" * 80)
        show_transcript(out, read_transcript(path))
    return EXIT_OK


def cmd_report(args: argparse.Namespace, err: Console) -> int:
    return report_command.run(args, err, sys.stdout)


async def cmd_rerun(args: argparse.Namespace, out: Console, err: Console) -> int:
    result = await rerun(args.transcript, _settings(args), out=out, err=err, quiet=args.quiet)
    return EXIT_FAILED if result.status == "error" else EXIT_OK


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


async def _main_async(args: argparse.Namespace, out: Console, err: Console) -> int:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        stopper = _Stopper(task, err)
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stopper)
    if args.command == "rerun":
        return await cmd_rerun(args, out, err)
    if args.command == "run":
        return await cmd_run(args, out, err)
    if args.command == "tournament":
        return await cmd_tournament(args, out, err)
    return await cmd_models(args, out)


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
    logs.configure(fmt=args.log_format, verbose=args.verbose, debug=args.debug)
    # Bound to the streams as they are now, not looked up at each print.
    out, err = console(sys.stdout), console(sys.stderr)
    try:
        if args.command == "validate":
            return cmd_validate(args, out)
        if args.command == "show":
            return cmd_show(args, out)
        if args.command == "schema":
            return cmd_schema(args)
        if args.command == "report":
            return cmd_report(args, err)
        if args.command == "tournament" and args.verb == "status":
            tournament_commands.status(args.folder, out=out, fmt=args.format)
            return EXIT_OK
        if args.command == "leaderboard":
            tournament_commands.leaderboard(
                args.folder, out=out, fmt=args.format, rounds=args.rounds, seed=args.seed
            )
            return EXIT_OK
        return asyncio.run(_main_async(args, out, err))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
