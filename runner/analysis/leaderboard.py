"""Leaderboards in the report: a tournament folder's ratings, shown beside the metrics.

A folder is a tournament folder when it holds a ``results.jsonl`` ledger. The report
shows a leaderboard given as rows; :func:`tournament_leaderboard` is the one place that
turns a tournament folder into those rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from runner.analysis.frames import RESULTS_FILE


class LeaderboardRow(BaseModel):
    """One entrant: its rating with a 95% interval, and its record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    rating: float
    ci_low: float | None = None
    ci_high: float | None = None
    games: int
    wins: int
    draws: int
    losses: int
    mean_reply_tokens: float | None = None


def is_tournament(path: str | Path) -> bool:
    return (Path(path) / RESULTS_FILE).is_file()


def tournament_leaderboard(folder: Path) -> list[LeaderboardRow] | None:
    """The ratings of the tournament in ``folder`` (as ``sparring leaderboard`` computes
    them), or None when it has no results to rate or is not a tournament folder after all."""
    from runner.tournament.ledger import LedgerError
    from runner.tournament.standings import folder_leaderboard

    try:
        board = folder_leaderboard(folder)
    except (LedgerError, KeyError, ValueError):
        return None
    if not board.games:
        return None
    return [LeaderboardRow.model_validate(row) for row in board.to_dict()["entrants"]]


def find_leaderboard(paths: Iterable[str | Path]) -> list[LeaderboardRow] | None:
    """The leaderboard of the first tournament folder among ``paths``, if any."""
    for path in paths:
        if is_tournament(path):
            return tournament_leaderboard(Path(path))
    return None
