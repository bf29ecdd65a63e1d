"""``sparring schema``: the JSON Schema of scenario files, tournament files or transcript lines."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from runner.cli.options import EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console

HELP = "print the JSON Schema of scenarios or transcript lines"
ENGINE = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("scenario", "tournament", "transcript"))


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.what == "scenario":
        from runner.scenario.schema import json_schema
    elif args.what == "tournament":
        from runner.tournament.spec import json_schema
    else:
        from runner.transcript import json_schema
    sys.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK
