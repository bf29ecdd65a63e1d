"""``sparring rerun``: play one transcript's conversation again, into a new transcript."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from runner.cli.options import EXIT_FAILED, EXIT_OK, add_limits, add_out, add_pull, run_settings

if TYPE_CHECKING:
    from rich.console import Console

HELP = "play one transcript's conversation again"
ENGINE = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("transcript", metavar="TRANSCRIPT", help="a JSONL transcript")
    add_limits(parser)
    add_out(parser)
    add_pull(parser)
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from runner.run.replay import rerun

    result = await rerun(args.transcript, run_settings(args), out=out, err=err, quiet=args.quiet)
    return EXIT_FAILED if result.status == "error" else EXIT_OK
