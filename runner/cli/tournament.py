"""``sparring tournament run|status``: run (or resume) a tournament; follow one from disk."""

from __future__ import annotations

import argparse
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_limits,
    backend,
    common,
    count,
    run_settings,
)
from runner.extras import require_report

if TYPE_CHECKING:
    from rich.console import Console

HELP = "run and follow tournaments"
ENGINE = False  # only its ``run`` verb talks to an engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shared, engine = common(), backend()
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser("run", parents=[shared, engine], help="run (or resume) a tournament")
    run.add_argument("file", type=Path, metavar="FILE", help="tournament YAML file")
    run.add_argument("--out", type=Path, required=True, metavar="DIR", help="tournament folder")
    run.add_argument("--dry-run", action="store_true", help="check models, print the plan")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--pull", action="store_true", help="pull missing models (ollama)")
    run.add_argument(
        "--max-loaded", type=_max_loaded, metavar="N|learn",
        help="models a server keeps loaded at once, the judge's included (default: learn, "
        "from what the server says it holds; the file's max_loaded otherwise)",
    )  # fmt: skip
    run.add_argument(
        "--max-errors", type=count(1_000_000), metavar="N", help="stop after N games in error"
    )
    run.add_argument(
        "--accept-changes", action="store_true",
        help="go on although the tournament file changed since DIR was started",
    )  # fmt: skip
    run.add_argument(
        "--retry-errors", action="store_true", help="play games that ended in error again"
    )
    add_limits(run)
    status = verbs.add_parser("status", parents=[shared], help="a tournament's progress, from disk")
    status.add_argument("folder", type=Path, metavar="DIR")
    status.add_argument("--format", choices=("table", "json"), default="table")


def _max_loaded(text: str) -> int | str:
    """A number of models, or ``learn``: learned from what the server says it holds."""
    if text == "learn":
        return text
    try:
        return count(64)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected learn or a number from 1 to 64, got {text!r}"
        ) from None


def run(args: argparse.Namespace, out: Console, err: Console) -> int | Coroutine[Any, Any, int]:
    if args.verb == "status":
        from runner.tournament import commands

        commands.status(args.folder, out=out, fmt=args.format)
        return EXIT_OK
    return _play(args, out, err)


async def _play(args: argparse.Namespace, out: Console, err: Console) -> int:
    from runner.tournament import commands
    from runner.tournament.play import PlaySettings

    if not args.dry_run:  # a finished tournament ends with its leaderboard
        require_report("sparring tournament run")
    settings = PlaySettings(
        out=args.out,
        run=run_settings(args),
        max_loaded=args.max_loaded,
        max_errors=args.max_errors,
        accept_changes=args.accept_changes,
        retry_errors=args.retry_errors,
    )
    failed = await commands.run(
        args.file, settings, out=out, err=err, dry_run=args.dry_run, quiet=args.quiet
    )
    return EXIT_FAILED if failed else EXIT_OK
