"""Sides in a tournament's results: how often each side wins (the side advantage), and
the results per motion, from the results lines alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runner.tournament.intervals import wilson
from runner.tournament.ledger import ResultRecord

SIDES = ("proposition", "opposition")


def side_of_winner(result: ResultRecord) -> str | None:
    """The side that won the game; None for a draw (or a game without sides)."""
    sides = result.sides or {}
    return next((side for side in SIDES if sides.get(side) == result.winner), None)


def _counted(results: Sequence[ResultRecord]) -> list[ResultRecord]:
    return [r for r in results if r.status == "success" and r.sides]


def side_advantage(results: Sequence[ResultRecord]) -> dict[str, Any] | None:
    """Per side: games, wins and the win rate with its 95% Wilson score interval (a draw
    is no win for either side); None when no game had sides."""
    counted = _counted(results)
    if not counted:
        return None
    games = len(counted)
    winners = [side_of_winner(r) for r in counted]
    out: dict[str, Any] = {"games": games, "draws": winners.count(None)}
    for side in SIDES:
        wins = winners.count(side)
        low, high = wilson(wins, games)
        out[side] = {
            "wins": wins,
            "win_rate": round(wins / games, 3),
            "ci_low": low,
            "ci_high": high,
        }
    return out


def per_motion(results: Sequence[ResultRecord]) -> list[dict[str, Any]]:
    """Per motion, in order of first appearance: games, wins by side, draws."""
    rows: dict[str, dict[str, Any]] = {}
    for r in _counted(results):
        if r.motion is None:
            continue
        row = rows.setdefault(
            r.motion,
            {"motion": r.motion, "games": 0, "proposition": 0, "opposition": 0, "draws": 0},
        )
        row["games"] += 1
        side = side_of_winner(r)
        row[side or "draws"] += 1
    return list(rows.values())
