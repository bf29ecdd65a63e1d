"""The ``sparring`` command line.

Exit codes: 0 every conversation finished (whatever its outcome); 1 a conversation
ended in error, or an internal failure; 2 nothing could start: bad input (scenario,
option), a missing model, no engine or an unreachable server; 130 interrupted (Ctrl-C or
SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console

from agents.backends import CHOICES, choose_backend, create_backend
from agents.backends.base import BackendSettings, Timeouts
from agents.errors import ConfigError, SparringError
from runner import __version__, logs
from runner.analysis import command as report_command
from runner.console import (
    LiveObserver,
    ProgressObserver,
    PullProgress,
    models_table,
    show_transcript,
    summary,
)
from runner.events import Observer
from runner.generate import RetryPolicy
from runner.orchestrator import prepare, run_conversations
from runner.pool import BackendPool
from runner.scenario import json_schema as scenario_schema
from runner.scenario import load_scenario
from runner.settings import RunSettings
from runner.transcript import json_schema as transcript_schema
from runner.transcript import read_transcript, transcript_paths

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

log = structlog.get_logger("sparring.cli")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text}")
    return value


def _var(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    timeouts = Timeouts()
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

    parser = argparse.ArgumentParser(
        prog="sparring",
        description="Multi-agent conversations between language models, from YAML scenarios.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"sparring {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common, backend], help="run scenarios")
    run.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    run.add_argument("--repeat", type=_positive_int, metavar="N", help="run each scenario N times")
    run.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help="requests in flight per server or model (default: the backend's parallel slots: "
        "OLLAMA_NUM_PARALLEL or 1 for ollama, 4 per host for openai, 1 per embedded model)",
    )
    run.add_argument(
        "--out", metavar="DIR", type=Path, default=Path("transcripts"), help="transcript folder"
    )
    run.add_argument("--seed", metavar="N", type=int, help="base seed (overrides the scenario's)")
    run.add_argument(
        "--var",
        type=_var,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a scenario variable",
    )
    run.add_argument(
        "--max-turns", metavar="N", type=_positive_int, help="override the scenario's max_turns"
    )
    run.add_argument("--pull", action="store_true", help="pull missing models (ollama)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="validate, choose backends and check models; do not chat",
    )
    run.add_argument("--quiet", action="store_true", help="print only the summary")
    run.add_argument(
        "--retries",
        metavar="N",
        type=_positive_int,
        default=5,
        help="attempts per turn (default 5)",
    )
    run.add_argument(
        "--backoff",
        metavar="SECONDS",
        type=_seconds,
        default=1.0,
        help="first retry wait in seconds, doubled each retry, with jitter (default 1)",
    )
    run.add_argument(
        "--timeout-connect",
        metavar="SECONDS",
        type=_seconds,
        default=timeouts.connect,
        help=f"seconds (default {timeouts.connect:g})",
    )
    run.add_argument(
        "--timeout-first-token",
        metavar="SECONDS",
        type=_seconds,
        default=timeouts.first_token,
        help=f"seconds, includes model loading (default {timeouts.first_token:g})",
    )
    run.add_argument(
        "--timeout-reply",
        metavar="SECONDS",
        type=_seconds,
        default=timeouts.reply,
        help=f"seconds for a whole reply (default {timeouts.reply:g})",
    )

    validate = sub.add_parser("validate", parents=[common], help="check scenario files")
    validate.add_argument("files", nargs="+", metavar="FILE")

    models = sub.add_parser("models", parents=[common, backend], help="list the backend's models")
    del models  # only the shared options

    schema = sub.add_parser(
        "schema", parents=[common], help="print the JSON Schema of scenarios or transcript lines"
    )
    schema.add_argument("what", choices=("scenario", "transcript"))

    show = sub.add_parser("show", parents=[common], help="print a transcript readably")
    show.add_argument(
        "transcripts", nargs="+", metavar="TRANSCRIPT", help="JSONL files or folders of them"
    )

    report = sub.add_parser(
        "report", parents=[common], help="compare models from transcripts: HTML, JSON or CSV"
    )
    report_command.add_arguments(report)
    return parser


# ---------------------------------------------------------------------------- commands


def _load_all(files: Sequence[str], **overrides: Any) -> list[Any]:
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
            s = load_scenario(file)
        except ConfigError as exc:
            failed = True
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            continue
        agents = ", ".join(f"{a.name} ({a.model})" for a in s.agents)
        out.print(
            f"ok  {file}: {s.name}: {agents}; {s.order}, max {s.max_turns} turns", highlight=False
        )
    return EXIT_USAGE if failed else EXIT_OK


def _settings(args: argparse.Namespace) -> RunSettings:
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
    )


async def cmd_run(args: argparse.Namespace, out: Console, err: Console) -> int:
    scenarios = _load_all(
        args.files,
        vars=dict(args.var),
        seed=args.seed,
        repeat=args.repeat,
        max_turns=args.max_turns,
    )
    settings = _settings(args)
    async with BackendPool(settings) as pool:
        plans, infos = await prepare(
            scenarios, pool, pull=settings.pull, progress=PullProgress(err)
        )
        if args.dry_run:
            for plan in plans:
                s = plan.scenario
                agents = ", ".join(
                    f"{a.name}={a.model}@{plan.bindings[a.name].choice.name}" for a in s.agents
                )
                out.print(
                    f"{s.name}#{plan.repeat_index}: seed {plan.seed}; {agents}", highlight=False
                )
            out.print(f"{len(plans)} conversation(s) would run; nothing was sent to a model")
            return EXIT_OK
        display: contextlib.AbstractContextManager[Observer]
        if args.quiet:
            display = contextlib.nullcontext(Observer())
        elif len(plans) == 1:
            display = contextlib.nullcontext(LiveObserver(out))
        else:
            display = ProgressObserver(err, len(plans))
        with display as observer:
            results = await run_conversations(
                plans, pool, settings, observer=observer, model_infos=infos
            )
        summary(out, results)
        return EXIT_FAILED if any(r.status == "error" for r in results) else EXIT_OK


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


def cmd_schema(args: argparse.Namespace) -> int:
    schema = scenario_schema() if args.what == "scenario" else transcript_schema()
    sys.stdout.write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: Console) -> int:
    for i, path in enumerate(transcript_paths(args.transcripts)):
        if i:
            out.rule()
        show_transcript(out, read_transcript(path))
    return EXIT_OK


def cmd_report(args: argparse.Namespace, err: Console) -> int:
    return report_command.run(args, err, sys.stdout)


async def _main_async(args: argparse.Namespace, out: Console, err: Console) -> int:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        # SIGTERM stops a run like Ctrl-C: cancel, let every transcript write its end line.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    if args.command == "run":
        return await cmd_run(args, out, err)
    return await cmd_models(args, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(fmt=args.log_format, verbose=args.verbose, debug=args.debug)
    # Bound to the streams as they are now, not looked up at each print.
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    try:
        if args.command == "validate":
            return cmd_validate(args, out)
        if args.command == "show":
            return cmd_show(args, out)
        if args.command == "schema":
            return cmd_schema(args)
        if args.command == "report":
            return cmd_report(args, err)
        return asyncio.run(_main_async(args, out, err))
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print("interrupted: open transcripts were closed with status 'cancelled'")
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"sparring: {problem}", file=sys.stderr)
        if args.debug:
            raise
        return EXIT_USAGE
    except SparringError as exc:  # a BackendError here came before any conversation started
        print(f"sparring: {exc}", file=sys.stderr)
        if args.debug:
            raise
        return EXIT_USAGE
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"sparring: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
