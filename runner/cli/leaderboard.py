"""``sparring leaderboard``: ratings from a tournament folder or a table of games."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from runner.cli.options import EXIT_OK, count, seed
from runner.extras import require_report

if TYPE_CHECKING:
    from rich.console import Console

HELP = "ratings from a tournament folder or a results table"
ENGINE = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder", type=Path, metavar="DIR|FILE",
        help="a tournament folder, or a CSV or JSON-lines table of games or pair counts",
    )  # fmt: skip
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--rounds", type=count(100_000), default=1000, help="bootstrap rounds")
    parser.add_argument(
        "--seed", type=seed, help="bootstrap seed (default: the tournament's; 0 for a table)"
    )
    parser.add_argument(
        "--draws", choices=("half", "davidson"), default="half",
        help="a draw is half a win (default), or draws by the Davidson tie model",
    )  # fmt: skip


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    require_report("sparring leaderboard")
    from runner.tournament import commands

    commands.leaderboard(
        args.folder, out=out, fmt=args.format, rounds=args.rounds, seed=args.seed, draws=args.draws
    )
    return EXIT_OK
