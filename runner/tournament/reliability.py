"""How far a tournament's judges can be trusted, from the verdicts in its results.

Every game is judged in both presentation orders, so a judge's verdicts can be checked
against themselves: a verdict that names another side when the order flips is position
bias, not judgement. Each verdict is read in seat terms (the first seat won, the second
won, or a draw) and, per judge, counted: verdicts, abstentions (no valid verdict), games
judged in both orders and how often the two verdicts differ (with a Wilson interval,
scipy.stats.binomtest), how often a decisive verdict names Speaker 1 (0.5 is no
preference), the agreement of the two orders as Krippendorff's alpha (nominal, the
``krippendorff`` package: chance-corrected, missing verdicts allowed), and the games in
which one of the entrants runs on the judge's own model, with the verdicts for and against
it. With several judges, their decisions on the games they share (both orders agreeing,
else a draw, as the ledger decides) are compared the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.tournament.intervals import wilson
from runner.tournament.ledger import ResultRecord
from runner.transcript import VerdictRecord

SEAT_VALUES = {"first": 0, "second": 1, "draw": 2}


def _seat(verdict: VerdictRecord, result: ResultRecord, first_seat: str) -> str | None:
    """The verdict in seat terms: "first", "second", "draw", or None (no valid verdict)."""
    if verdict.winner is None:
        return None
    if verdict.winner == "draw":
        return "draw"
    if verdict.speaker is not None:
        return "first" if verdict.speaker == result.seats[first_seat] else "second"
    # No speaker recorded: Speaker 1 is the first seat unless the order was swapped.
    speaker_1 = verdict.winner == "first"
    return "first" if speaker_1 == (verdict.order == "as_seated") else "second"


def _rate(k: int, n: int) -> dict[str, float | int | None]:
    """k of n with its Wilson interval; None where there is nothing to count."""
    if not n:
        return {"count": k, "of": n, "rate": None, "ci_low": None, "ci_high": None}
    low, high = wilson(k, n)
    return {"count": k, "of": n, "rate": round(k / n, 3), "ci_low": low, "ci_high": high}


def agreement(ratings: Sequence[Sequence[str | None]]) -> float | None:
    """Krippendorff's alpha (nominal) of raters' values per unit (None: missing); None
    where it is not defined (no unit rated twice, or a single value throughout)."""
    import krippendorff
    import numpy as np

    data = np.array(
        [[math.nan if v is None else SEAT_VALUES[v] for v in rater] for rater in ratings],
        dtype=float,
    )
    try:
        alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    except ValueError:
        return None
    return round(alpha, 3) if math.isfinite(alpha) else None


@dataclass(slots=True)
class _Judge:
    model: str
    games: set[str] = field(default_factory=set)
    verdicts: int = 0
    abstained: int = 0
    speaker_1: int = 0
    decisive: int = 0
    # Per game: the seat outcome of each order, and the judge's decision.
    orders: dict[str, dict[str, str | None]] = field(default_factory=dict)
    self_games: int = 0
    for_own: int = 0
    against_own: int = 0

    def to_dict(self) -> dict[str, Any]:
        both = [o for o in self.orders.values() if o.get("as_seated") and o.get("swapped")]
        flips = sum(1 for o in both if o["as_seated"] != o["swapped"])
        units = list(self.orders.values())
        return {
            "model": self.model,
            "games": len(self.games),
            "verdicts": self.verdicts,
            "abstentions": self.abstained,
            "order_flips": _rate(flips, len(both)),
            "speaker_1": _rate(self.speaker_1, self.decisive),
            "order_alpha": agreement(
                [[u.get("as_seated") for u in units], [u.get("swapped") for u in units]]
            ),
            "self_judged": {
                "games": self.self_games,
                "verdicts_for_own_model": self.for_own,
                "verdicts_against_own_model": self.against_own,
            },
        }


def decision(orders: dict[str, str | None]) -> str | None:
    """A judge's decision from both orders: agreement decides, disagreement is a draw;
    None when either order has no valid verdict."""
    seated, swapped = orders.get("as_seated"), orders.get("swapped")
    if seated is None or swapped is None:
        return None
    return seated if seated == swapped else "draw"


def judge_reliability(
    results: Iterable[ResultRecord], seats: Sequence[str], models: dict[str, str]
) -> dict[str, Any] | None:
    """The judges' reliability as strict JSON, or None when no game was judged.
    ``models`` maps each entrant to its model (to find games a judge judged its own in)."""
    judges: dict[str, _Judge] = {}
    for r in results:
        for verdict in r.judge or ():
            j = judges.setdefault(verdict.judge_model, _Judge(verdict.judge_model))
            _count(j, verdict, r, seats[0], models)
    if not judges:
        return None
    report: dict[str, Any] = {"judges": [judges[m].to_dict() for m in sorted(judges)]}
    report["between_judges"] = _between(list(judges.values())) if len(judges) > 1 else None
    return report


def _count(
    j: _Judge, verdict: VerdictRecord, r: ResultRecord, first_seat: str, models: dict[str, str]
) -> None:
    new_game = r.game_id not in j.games
    j.games.add(r.game_id)
    j.verdicts += 1
    outcome = _seat(verdict, r, first_seat)
    j.orders.setdefault(r.game_id, {})[verdict.order] = outcome
    # Neither entrant, or both, on the judge's model: no side it could favour.
    own = [seat for seat, name in r.seats.items() if models.get(name) == j.model]
    judged_own = len(own) == 1
    j.self_games += judged_own and new_game
    if outcome is None:
        j.abstained += 1
        return
    if verdict.winner in ("first", "second"):
        j.decisive += 1
        j.speaker_1 += verdict.winner == "first"
    if judged_own and outcome != "draw":
        if outcome == ("first" if own[0] == first_seat else "second"):
            j.for_own += 1
        else:
            j.against_own += 1


def _between(judges: list[_Judge]) -> dict[str, Any]:
    """The judges' decisions compared on the games they share."""
    games = sorted(set().union(*(j.orders for j in judges)))
    decisions = [[decision(j.orders.get(g, {})) for g in games] for j in judges]
    shared = [
        [d[i] for d in decisions if d[i] is not None]
        for i in range(len(games))
        if sum(d[i] is not None for d in decisions) > 1
    ]
    unanimous = sum(1 for values in shared if len(set(values)) == 1)
    return {
        "models": [j.model for j in judges],
        "unanimous": _rate(unanimous, len(shared)),
        "alpha": agreement(decisions),
    }
