"""The ``tournament`` and ``leaderboard`` commands, behind the CLI's argument parsing."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from runner.tournament import standings
from runner.tournament.display import (
    TournamentDisplay,
    leaderboard_table,
    leaderboard_text,
    print_plan,
    print_summary,
    status_text,
)
from runner.tournament.play import PlaySettings, check, play
from runner.tournament.ratings import Draws
from runner.tournament.spec import load_tournament


async def run(
    path: Path, settings: PlaySettings, *, out: Console, err: Console, dry_run: bool, quiet: bool
) -> bool:
    """Plan (``dry_run``) or run a tournament; True when a game ended in error or it stopped."""
    tournament = load_tournament(path)
    if dry_run:
        capacity, servers = await check(tournament, settings)
        print_plan(out, tournament, capacity, servers)
        return False
    with TournamentDisplay(err, enabled=not quiet and err.is_terminal, out=out) as display:
        outcome = await play(tournament, settings, display)
    status = standings.status(settings.out)
    print_summary(out, outcome, status)
    if status.done:
        out.print()
        leaderboard_table(out, standings.folder_leaderboard(settings.out))
    failed = any(r.status == "error" for r in outcome.recorded)
    return failed or outcome.stopped is not None


def status(folder: Path, *, out: Console, fmt: str) -> None:
    state = standings.status(folder)
    if fmt == "json":
        import json

        out.print(json.dumps(state.to_dict(), indent=2), soft_wrap=True)
    else:
        status_text(out, state)


def leaderboard(
    source: Path, *, out: Console, fmt: str, rounds: int, seed: int | None, draws: Draws = "half"
) -> None:
    """The ratings of a tournament folder, or of a table of games played elsewhere."""
    if source.is_dir():
        board = standings.folder_leaderboard(source, rounds=rounds, seed=seed, draws=draws)
    else:
        from runner.tournament.fit import rate
        from runner.tournament.table import read_table

        board = rate(read_table(source), rounds=rounds, seed=seed or 0, draws=draws)
    if fmt == "table":
        leaderboard_table(out, board)
    else:
        text = leaderboard_text(board, fmt)
        out.file.write(text if text.endswith("\n") else text + "\n")
