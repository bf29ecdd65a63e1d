"""``sparring report``: compare models from transcripts (see :mod:`runner.analysis.command`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from runner.analysis import command
from runner.extras import require_report

if TYPE_CHECKING:
    from rich.console import Console

HELP = "compare models from transcripts: HTML, JSON or CSV"
ENGINE = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    command.add_arguments(parser)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    require_report("sparring report")
    return command.run(args, err, sys.stdout)
