"""Leaderboards in the report: a tournament folder's ratings, shown beside the metrics.

A folder is a tournament folder when it holds a ``results.jsonl`` ledger. The report
shows a leaderboard given as rows, with the method that made them and the judges'
reliability; :func:`tournament_standings` is the one place that turns a tournament folder
into those.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from runner.analysis.frames import RESULTS_FILE


class LeaderboardRow(BaseModel):
    """One entrant: its rating with a 95% interval, the ranks the intervals allow, its
    record, and the games it lost to errors."""

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
    rank: int | None = None  # 1 + entrants whose interval lies wholly above
    rank_worst: int | None = None  # entrants less those whose interval lies wholly below
    tied: bool = False  # another entrant has the same rank
    errors: int = 0  # games it sat in that ended in error, not counted
    own_errors: int = 0  # of those, failed on a request to its own model
    refusals: int = 0  # of those, refused by the server


def is_tournament(path: str | Path) -> bool:
    return (Path(path) / RESULTS_FILE).is_file()


class Standings(BaseModel):
    """A tournament's leaderboard as the report shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: list[LeaderboardRow]
    method: str = ""
    judges: dict[str, Any] | None = None  # as ``tournament status`` reports them


def tournament_standings(folder: Path) -> Standings | None:
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
    data = board.to_dict()
    return Standings(
        rows=[LeaderboardRow.model_validate(row) for row in data["entrants"]],
        method=data["method"],
        judges=data["judges"],
    )


def tournament_leaderboard(folder: Path) -> list[LeaderboardRow] | None:
    standings = tournament_standings(folder)
    return None if standings is None else standings.rows


def find_standings(paths: Iterable[str | Path]) -> Standings | None:
    """The leaderboard of the first tournament folder among ``paths``, if any."""
    for path in paths:
        if is_tournament(path):
            return tournament_standings(Path(path))
    return None


def find_leaderboard(paths: Iterable[str | Path]) -> list[LeaderboardRow] | None:
    standings = find_standings(paths)
    return None if standings is None else standings.rows
