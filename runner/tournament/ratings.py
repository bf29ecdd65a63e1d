"""Ratings from game results: Bradley-Terry on an Elo-like scale, with bootstrap intervals.

The model: P(A beats B) = 1 / (1 + 10^((r_B - r_A - s) / 400)) when A has the first seat,
with ``s`` the first seat's advantage. It is fitted as a logistic regression without
intercept (scikit-learn), one column per entrant (+1 for the first seat's entrant, -1 for
the second's) and one for the seat, over games weighted by their score: a win is 1, a
draw half a win for each side. An L2 penalty is a Gaussian prior with a standard deviation
of one logit (about 174 rating points) on every rating: unbeaten or winless entrants get
finite ratings, and few games move ratings little. Ratings are shifted so that their mean
is 1000. Intervals: the games are resampled with replacement and refitted (a seeded
percentile bootstrap, scipy.stats.bootstrap, 1,000 rounds by default), and the 2.5th and
97.5th percentiles of each rating are reported.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# numpy, scipy and scikit-learn (the report extra) load when ratings are computed, not when
# a tournament's records are read or played.

SCALE = 400 / math.log(10)  # rating points per logit
CENTER = 1000.0
PRIOR_C = 1.0  # inverse L2 strength: a prior standard deviation of one logit
ROUNDS = 1000


def _finite(value: float, digits: int) -> float | None:
    """A number for JSON: rounded, or null where there is none (no games: no interval)."""
    return round(value, digits) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Decided:
    """One counted game: ``first`` sat in the first seat; ``score`` is its result (1, 0.5, 0)."""

    first: str
    second: str
    score: float


# One entrant's row, in the order the leaderboard's CSV, JSON and the report list them.
ENTRANT_FIELDS = (
    "name", "rating", "ci_low", "ci_high", "games", "wins", "draws", "losses",
    "mean_reply_tokens",
)  # fmt: skip


@dataclass(slots=True)
class Standing:
    name: str
    rating: float
    ci_low: float
    ci_high: float
    games: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0


@dataclass(slots=True)
class Leaderboard:
    entrants: list[Standing]
    seat_advantage: dict[str, float]  # rating points, with its interval
    first_seat_score: dict[str, float]  # mean score of the first seat, with its interval
    # Row against column: wins, draws, losses, and win_rate (None if they never met).
    pairwise: dict[str, dict[str, dict[str, float | None]]]
    games: int
    rounds: int
    seed: int
    excluded: dict[str, int] = field(default_factory=dict)  # games not counted, by reason
    reply_tokens: dict[str, float] = field(default_factory=dict)  # mean per reply, by entrant

    def to_dict(self) -> dict[str, Any]:
        return {
            "entrants": [
                {
                    "name": s.name,
                    "rating": _finite(s.rating, 1),
                    "ci_low": _finite(s.ci_low, 1),
                    "ci_high": _finite(s.ci_high, 1),
                    "games": s.games,
                    "wins": s.wins,
                    "draws": s.draws,
                    "losses": s.losses,
                    "mean_reply_tokens": round(self.reply_tokens[s.name], 1)
                    if s.name in self.reply_tokens
                    else None,
                }
                for s in self.entrants
            ],
            "seat_advantage": {k: _finite(v, 1) for k, v in self.seat_advantage.items()},
            "first_seat_score": {
                k: int(v) if k == "games" else _finite(v, 3)
                for k, v in self.first_seat_score.items()
            },
            "pairwise": self.pairwise,
            "games": self.games,
            "excluded": self.excluded,
            "method": "Bradley-Terry (logistic regression, L2 prior sd 1 logit), Elo-like "
            f"scale (400 points per factor of 10 in odds, mean {CENTER:g}), percentile "
            f"bootstrap over games ({self.rounds} rounds, seed {self.seed})",
        }


def _fit(games: Sequence[Decided], names: Sequence[str]) -> np.ndarray:
    """Ratings (logits) of ``names`` and, last, the first seat's advantage."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    index = {name: i for i, name in enumerate(names)}
    n = len(games)
    x = np.zeros((2 * n, len(names) + 1))
    y = np.zeros(2 * n)
    weight = np.zeros(2 * n)
    for k, game in enumerate(games):
        for row in (2 * k, 2 * k + 1):
            x[row, index[game.first]] = 1.0
            x[row, index[game.second]] = -1.0
            x[row, -1] = 1.0
        # One game, two rows: "first wins" weighted by its score, "first loses" by the rest.
        y[2 * k], weight[2 * k] = 1.0, game.score
        y[2 * k + 1], weight[2 * k + 1] = 0.0, 1.0 - game.score
    if not (weight[y == 1].sum() > 0 and weight[y == 0].sum() > 0):
        # Every game went the same way: the prior alone would be fitted; keep both classes.
        y[0], weight[0] = 1.0, weight[0] or 1e-9
        y[1], weight[1] = 0.0, weight[1] or 1e-9
    model = LogisticRegression(C=PRIOR_C, fit_intercept=False, solver="newton-cholesky")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, sample_weight=weight)
    coef: np.ndarray = model.coef_[0]
    return coef


def _points(coef: np.ndarray) -> np.ndarray:
    import numpy as np

    ratings = coef[:-1]
    return np.append(CENTER + SCALE * (ratings - ratings.mean()), SCALE * coef[-1])


def leaderboard(
    games: Sequence[Decided],
    names: Sequence[str],
    *,
    rounds: int = ROUNDS,
    seed: int = 0,
    excluded: dict[str, int] | None = None,
) -> Leaderboard:
    """Ratings, intervals, records and the pairwise matrix; entrants best first."""
    import numpy as np
    from scipy import stats

    names = list(names)
    if games:
        point = _points(_fit(games, names))
        indices = np.arange(len(games))

        def refit(sample: np.ndarray) -> np.ndarray:
            return _points(_fit([games[i] for i in sample], names))

        if len(games) > 1:
            boot = stats.bootstrap(
                (indices,), refit, vectorized=False, n_resamples=rounds, method="percentile",
                confidence_level=0.95, rng=np.random.default_rng(seed),
            )  # fmt: skip
            low, high = boot.confidence_interval.low, boot.confidence_interval.high
        else:
            low, high = point - np.inf, point + np.inf
    else:
        point = np.append(np.full(len(names), CENTER), 0.0)
        low, high = point - np.inf, point + np.inf
    standings = [
        Standing(name, float(point[i]), float(low[i]), float(high[i]))
        for i, name in enumerate(names)
    ]
    _count(standings, games)
    standings.sort(key=lambda s: (-s.rating, s.name))
    return Leaderboard(
        entrants=standings,
        seat_advantage={
            "rating": float(point[-1]),
            "ci_low": float(low[-1]),
            "ci_high": float(high[-1]),
        },
        first_seat_score=_first_seat(games, seed, rounds),
        pairwise=_pairwise(games, names),
        games=len(games),
        rounds=rounds,
        seed=seed,
        excluded=excluded or {},
    )


def _count(standings: list[Standing], games: Sequence[Decided]) -> None:
    by_name = {s.name: s for s in standings}
    for game in games:
        for name, score in ((game.first, game.score), (game.second, 1.0 - game.score)):
            s = by_name[name]
            s.games += 1
            if score == 1.0:
                s.wins += 1
            elif score == 0.0:
                s.losses += 1
            else:
                s.draws += 1


def _first_seat(games: Sequence[Decided], seed: int, rounds: int) -> dict[str, float]:
    import numpy as np
    from scipy import stats

    scores = np.array([g.score for g in games], dtype=float)
    if len(scores) < 2 or np.all(scores == scores[0]):
        mean = float(scores.mean()) if len(scores) else math.nan
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "games": float(len(scores))}
    boot = stats.bootstrap(
        (scores,), np.mean, n_resamples=rounds, method="percentile",
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    return {
        "mean": float(scores.mean()),
        "ci_low": float(boot.confidence_interval.low),
        "ci_high": float(boot.confidence_interval.high),
        "games": float(len(scores)),
    }


def _pairwise(
    games: Sequence[Decided], names: Sequence[str]
) -> dict[str, dict[str, dict[str, float | None]]]:
    counts: dict[tuple[str, str], Counter[str]] = {
        (a, b): Counter() for a in names for b in names if b != a
    }
    for game in games:
        for me, other, score in (
            (game.first, game.second, game.score),
            (game.second, game.first, 1 - game.score),
        ):
            counts[me, other][
                "wins" if score == 1.0 else "losses" if score == 0.0 else "draws"
            ] += 1
    table: dict[str, dict[str, dict[str, float | None]]] = {a: {} for a in names}
    for (me, other), c in counts.items():
        played = c["wins"] + c["draws"] + c["losses"]
        # None for a pair that never met (a gauntlet's challengers): JSON has no NaN.
        rate = (c["wins"] + 0.5 * c["draws"]) / played if played else None
        table[me][other] = {"wins": c["wins"], "draws": c["draws"], "losses": c["losses"]}
        table[me][other]["win_rate"] = rate
    return table
