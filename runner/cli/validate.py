"""``sparring validate``: check scenario and tournament files, one line each."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from runner.cli.options import EXIT_OK, EXIT_USAGE
from runner.terminal import printable

if TYPE_CHECKING:
    from rich.console import Console

HELP = "check scenario files"
ENGINE = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from agents.errors import ConfigError

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
    from runner.scenario.schema import load_scenario
    from runner.tournament.games import all_games
    from runner.tournament.spec import load_tournament

    if _is_tournament(file):
        t = load_tournament(file)
        entrants = ", ".join(e.name for e in t.entrants)
        return f"tournament {t.name}: {entrants}; {len(all_games(t))} games of {t.scenario.name}"
    s = load_scenario(file)
    agents = ", ".join(f"{a.name} ({a.model})" for a in s.agents)
    if not s.phases:
        return f"{s.name}: {agents}; {s.order}, max {s.max_turns} turns"
    parts = [f"{len(s.phases)} phases", f"max {s.max_turns} turns"]
    if s.motions:
        parts.append(f"{len(s.motions)} motion{'s' if len(s.motions) > 1 else ''}")
    if s.moderator:
        parts.append(f"moderator {s.moderator.name}")
    if s.jury:
        parts.append(f"a jury of {len(s.jury.jurors)} voting {' and '.join(s.jury.stages)}")
    return f"{s.name}: {agents}; {', '.join(parts)}"


def _is_tournament(file: str) -> bool:
    """A mapping with ``entrants`` is a tournament file (read safely; errors come later)."""
    from agents.errors import ConfigError
    from runner.scenario.source import read_yaml

    try:
        data, _ = read_yaml(file, "a scenario or tournament")
    except ConfigError:
        return False
    return "entrants" in data
