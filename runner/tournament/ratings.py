"""Ratings from game results: Bradley-Terry on an Elo-like scale, with bootstrap intervals.

The model: P(A beats B) = 1 / (1 + 10^((r_B - r_A - s) / 400)) when A has the first seat,
with ``s`` the first seat's advantage. Games are counted per ordered pair (first seat,
second seat): wins, draws and losses. The fit maximises the likelihood of a logistic
regression without intercept (one coefficient per entrant and one for the seat) in which
a win is one success, a draw half a success for each side; every pair's games enter as
weights, so a million games cost what their distinct pairs cost. A Gaussian prior with a
standard deviation of one logit (about 174 rating points) on every rating and on the seat
(the L2 penalty of scikit-learn's LogisticRegression with C=1, which the tests check it
against) keeps unbeaten and winless entrants finite, and few games move ratings little.
scipy's trust-region optimiser minimises it with the exact gradient and Hessian. Ratings
are shifted so that their mean is 1000.

The Davidson tie model (an option) gives draws their own probability: P(A wins) : P(draw)
: P(B wins) = pi_A : nu * sqrt(pi_A * pi_B) : pi_B, with pi = e^r (the first seat's times
e^s), on the same scale and prior (nu is fitted freely: 0 without draws, where the model is
the one above, unbounded when every game is a draw). Both fits' log-likelihoods are
reported as three-outcome models, the draws-as-half fit predicting the observed draw share
for every game.

Intervals: the games are resampled with replacement and refitted, and the 2.5th and
97.5th percentiles of each rating are reported (a seeded percentile bootstrap, 1,000
rounds by default). Resampling N games with replacement is drawing N games from their
observed distribution over (pair, outcome), so each resample is one multinomial draw of
the counts (numpy's Generator.multinomial): the same bootstrap as resampling the games
one by one (what scipy.stats.bootstrap does), at a cost set by the pairs, not the games.

Ranks: an entrant's best rank is 1 + the entrants whose interval lies wholly above its
own (the arenas' "rank (upper bound)"), its worst rank the number of entrants less those
wholly below it; entrants sharing a best rank cannot be told apart and are shown as tied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

# The fits (runner.tournament.fit) need numpy and scipy, the report extra: they load when
# ratings are computed, not when a tournament's results are read, shown or played.

SCALE = 400 / math.log(10)  # rating points per logit
CENTER = 1000.0
PRIOR_SD = 1.0  # logits, on every rating and on the seat
ROUNDS = 1000
CONFIDENCE = 0.95
BATCH = 50  # resamples drawn at once: 50 x 3 counts x 9,900 pairs (a hundred entrants)

Draws = Literal["half", "davidson"]
DRAW_MODELS: tuple[Draws, ...] = ("half", "davidson")
DRAW_METHOD = {
    "half": "a draw is half a win for each side",
    "davidson": "draws by the Davidson tie model",
}


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
    "mean_reply_tokens", "rank", "rank_worst", "tied", "errors", "own_errors", "refusals",
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
    rank: int = 1  # 1 + entrants whose interval lies wholly above this one's
    rank_worst: int = 1  # entrants less those whose interval lies wholly below
    tied: bool = False  # another entrant has the same rank
    errors: int = 0  # games it sat in that ended in error (not counted)
    own_errors: int = 0  # of those, failed on a request to its own model
    refusals: int = 0  # of those, refused by the server (a bad request)


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
    draws: Draws = "half"
    # Both fits' log-likelihoods (three outcomes), and Davidson's draw parameter nu.
    log_likelihood: dict[str, float] = field(default_factory=dict)
    draw_parameter: float | None = None
    excluded: dict[str, int] = field(default_factory=dict)  # games not counted, by reason
    reply_tokens: dict[str, float] = field(default_factory=dict)  # mean per reply, by entrant
    judges: dict[str, Any] | None = None  # the judges' reliability, for a judged tournament
    # A debate's sides: win rate per side with its interval, and results per motion.
    sides: dict[str, Any] | None = None
    motions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def method(self) -> str:
        return (
            f"Bradley-Terry ({DRAW_METHOD[self.draws]}; L2 prior sd 1 logit), Elo-like "
            f"scale (400 points per factor of 10 in odds, mean {CENTER:g}), percentile "
            f"bootstrap over games ({self.rounds} rounds, seed {self.seed})"
        )

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
                    "rank": s.rank,
                    "rank_worst": s.rank_worst,
                    "tied": s.tied,
                    "errors": s.errors,
                    "own_errors": s.own_errors,
                    "refusals": s.refusals,
                }
                for s in self.entrants
            ],
            "seat_advantage": {k: _finite(v, 1) for k, v in self.seat_advantage.items()},
            "first_seat_score": {
                k: int(v) if k == "games" else _finite(v, 3)
                for k, v in self.first_seat_score.items()
            },
            "pairwise": self.pairwise,
            "side_advantage": self.sides,
            "motions": self.motions,
            "games": self.games,
            "excluded": self.excluded,
            "draws": self.draws,
            "log_likelihood": {k: _finite(v, 2) for k, v in self.log_likelihood.items()},
            "draw_parameter": None
            if self.draw_parameter is None
            else _finite(self.draw_parameter, 4),
            "judges": self.judges,
            "method": self.method,
        }


def leaderboard(
    games: Sequence[Decided],
    names: Sequence[str],
    *,
    rounds: int = ROUNDS,
    seed: int = 0,
    draws: Draws = "half",
    excluded: dict[str, int] | None = None,
) -> Leaderboard:
    """Ratings of games given one by one (see :func:`runner.tournament.fit.rate`)."""
    from runner.tournament.fit import PairCounts, rate

    return rate(
        PairCounts.from_games(games, names),
        rounds=rounds,
        seed=seed,
        draws=draws,
        excluded=excluded,
    )
