"""The fits behind :mod:`runner.tournament.ratings` (numpy and scipy): games counted per
ordered pair, the penalised Bradley-Terry and Davidson likelihoods with their exact
Hessians, the multinomial bootstrap over the counts, and the ranks the intervals allow.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special

from runner.tournament.ratings import (
    BATCH,
    CENTER,
    CONFIDENCE,
    DRAW_MODELS,
    PRIOR_SD,
    ROUNDS,
    SCALE,
    Decided,
    Draws,
    Leaderboard,
    Standing,
)


@dataclass(frozen=True)
class PairCounts:
    """Games as a table: one row per ordered pair that met, ``first`` (an index into
    ``names``) in the first seat, and the first seat's wins, draws and losses."""

    names: tuple[str, ...]
    first: np.ndarray
    second: np.ndarray
    wins: np.ndarray
    draws: np.ndarray
    losses: np.ndarray

    @classmethod
    def from_tallies(
        cls, tallies: Mapping[tuple[str, str], Sequence[int]], names: Sequence[str] | None = None
    ) -> PairCounts:
        """From ``{(first, second): (wins, draws, losses)}``; ``names`` default to everyone
        named, sorted."""
        if names is None:
            names = sorted({name for pair in tallies for name in pair})
        index = {name: i for i, name in enumerate(names)}
        rows = [
            (index[a], index[b], *wdl) for (a, b), wdl in sorted(tallies.items()) if sum(wdl) > 0
        ]
        table = np.array(rows, dtype=np.int64).reshape(-1, 5)
        return cls(tuple(names), *(np.ascontiguousarray(column) for column in table.T))

    @classmethod
    def from_games(cls, games: Iterable[Decided], names: Sequence[str]) -> PairCounts:
        outcomes = Counter((g.first, g.second, g.score) for g in games)
        tallies: dict[tuple[str, str], list[int]] = {}
        for (first, second, score), n in outcomes.items():
            column = 0 if score == 1.0 else 2 if score == 0.0 else 1
            tallies.setdefault((first, second), [0, 0, 0])[column] += n
        return cls.from_tallies(tallies, names)

    @property
    def games(self) -> int:
        return int(self.wins.sum() + self.draws.sum() + self.losses.sum())


# -- the fits ----------------------------------------------------------------------------


class _Design:
    """The regression's design on the pairs: eta = r_first - r_second + s per pair, with
    the sums that turn per-pair derivatives into the gradient and Hessian over (r, s)."""

    def __init__(self, first: np.ndarray, second: np.ndarray, n: int) -> None:
        self.first, self.second, self.n = first, second, n
        self.k = n + 1  # the entrants' ratings, then the seat
        self.pair = first * n + second

    def eta(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = x[self.first] - x[self.second] + x[self.n]
        return out

    def gradient(self, drew: np.ndarray) -> np.ndarray:
        """Sum over pairs of drew * drew(eta)/drew(r, s)."""
        n = self.n
        return np.append(
            np.bincount(self.first, drew, n) - np.bincount(self.second, drew, n), drew.sum()
        )

    def hessian(self, h: np.ndarray) -> np.ndarray:
        """Sum over pairs of h * drew(eta) drew(eta)^T (drew(eta) is +1 at first and the seat, -1 at
        second): a weighted graph Laplacian over the entrants, bordered by the seat."""
        n = self.n
        met = np.bincount(self.pair, h, n * n).reshape(n, n)
        out = np.empty((self.k, self.k))
        out[:n, :n] = -(met + met.T)
        out[np.diag_indices(n)] = met.sum(axis=0) + met.sum(axis=1)
        out[:n, n] = out[n, :n] = met.sum(axis=1) - met.sum(axis=0)
        out[n, n] = h.sum()
        return out


def _half(design: _Design, won: np.ndarray, drew: np.ndarray, lost: np.ndarray) -> tuple[Any, Any]:
    """The penalised negative log-likelihood of draws as half a win, with its Hessian."""
    success, failure = won + 0.5 * drew, lost + 0.5 * drew
    total = success + failure
    precision = 1 / PRIOR_SD**2

    def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
        eta = design.eta(x)
        log_p = special.log_expit(eta)  # and log(1 - p) = log_p - eta
        value = -(total @ log_p - failure @ eta)
        grad = design.gradient(total * special.expit(eta) - success)
        return float(value + 0.5 * precision * x @ x), grad + precision * x

    def hess(x: np.ndarray) -> np.ndarray:
        p = special.expit(design.eta(x))
        return design.hessian(total * p * (1 - p)) + precision * np.eye(design.k)

    return loss, hess


def _davidson_terms(eta: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """log Z and (P first wins, P draw, P second wins) per pair, for the softmax of
    (eta/2, t, -eta/2), computed stably."""
    half = eta / 2
    t = min(t, 700.0)  # every game a draw: nu is infinite, and so is t
    top = np.maximum(np.abs(half), t)
    terms = np.exp(np.stack([half - top, t - top, -half - top]))
    z = terms.sum(axis=0)
    return top + np.log(z), terms / z


def _davidson(
    design: _Design, won: np.ndarray, drew: np.ndarray, lost: np.ndarray
) -> tuple[Any, Any]:
    """The penalised negative log-likelihood of the Davidson model; the last parameter is
    the logarithm of its draw parameter nu."""
    total = won + drew + lost
    k = design.k
    drawn = drew.sum()
    precision = np.append(np.full(k, 1 / PRIOR_SD**2), 0.0)  # no prior on nu

    def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
        eta, t = design.eta(x), x[k]
        log_z, (win, draw, lose) = _davidson_terms(eta, t)
        value = -((won - lost) @ eta / 2 + drawn * t - total @ log_z)
        grad = np.append(
            design.gradient(-(won - lost) / 2 + total * (win - lose) / 2), total @ draw - drawn
        )
        return float(value + 0.5 * x @ (precision * x)), grad + precision * x

    def hess(x: np.ndarray) -> np.ndarray:
        _, (win, draw, lose) = _davidson_terms(design.eta(x), x[k])
        out = np.zeros((k + 1, k + 1))
        out[:k, :k] = design.hessian(total * ((win + lose) / 4 - (win - lose) ** 2 / 4))
        cross = design.gradient(-total * draw * (win - lose) / 2)
        out[:k, k] = out[k, :k] = cross
        out[k, k] = total @ (draw * (1 - draw))
        return out + np.diag(precision)

    return loss, hess


_MODELS = {"half": _half, "davidson": _davidson}


def _fit(
    model: Draws,
    design: _Design,
    won: np.ndarray,
    drew: np.ndarray,
    lost: np.ndarray,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """The parameters in logits: ratings, the seat, and (Davidson) log nu."""
    if model == "davidson":
        drawn, games = float(drew.sum()), float((won + drew + lost).sum())
        if drawn in (0.0, games):
            # Without draws Davidson's maximum is nu = 0 and the ratings are Bradley-Terry's;
            # with nothing but draws nu is infinite, and both fits find every pair even.
            ratings = _fit("half", design, won, drew, lost, None if start is None else start[:-1])
            return np.append(ratings, -math.inf if drawn == 0.0 else math.inf)
        if start is None or not math.isfinite(start[-1]):
            share = drawn / games
            start = np.append(
                np.zeros(design.k) if start is None else start[:-1],
                math.log(2 * share / (1 - share)),
            )
    loss, hess = _MODELS[model](design, won, drew, lost)
    if start is None:
        start = np.zeros(design.k)
    # The penalised likelihood is strictly convex: Newton steps in a trust region (dogleg)
    # converge in a few iterations, and in one or two from a nearby start (the bootstrap).
    # The gradient grows with the games per entrant, and so does its tolerance: a rating
    # is then exact to well under a thousandth of a point whatever the number of games.
    options = {"gtol": 1e-6 * (1.0 + float((won + drew + lost).sum()) / design.n)}
    result = optimize.minimize(loss, start, jac=True, hess=hess, method="dogleg", options=options)
    if not result.success:  # a step the dogleg could not take: the slower exact solver
        result = optimize.minimize(
            loss, result.x, jac=True, hess=hess, method="trust-exact", options=options
        )
    fitted: np.ndarray = result.x
    return fitted


def _points(coef: np.ndarray, n: int) -> np.ndarray:
    """Ratings on the Elo-like scale (mean 1000) and the seat in rating points."""
    ratings = coef[:n]
    return np.append(CENTER + SCALE * (ratings - ratings.mean()), SCALE * coef[n])


def _log_likelihood(
    model: Draws,
    coef: np.ndarray,
    design: _Design,
    won: np.ndarray,
    drew: np.ndarray,
    lost: np.ndarray,
) -> float:
    """The data's log-likelihood under a fit, read as a three-outcome model."""
    eta = design.eta(coef)
    if model == "davidson":
        _, (win, draw, lose) = _davidson_terms(eta, coef[design.k])
        return float(
            special.xlogy(won, win).sum()
            + special.xlogy(drew, draw).sum()
            + special.xlogy(lost, lose).sum()
        )
    games, drawn = float((won + drew + lost).sum()), float(drew.sum())
    share = drawn / games
    decisive = won @ special.log_expit(eta) + lost @ special.log_expit(-eta)
    return float(decisive + special.xlogy(drawn, share) + special.xlogy(games - drawn, 1 - share))


def _resamples(cells: np.ndarray, rounds: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples of the games as counts, ``BATCH`` rows at a time."""
    total = int(cells.sum())
    rng = np.random.default_rng(seed)
    seen = cells > 0  # outcomes never seen are never drawn: leave them out of the draw
    p = cells[seen] / total
    for start in range(0, rounds, BATCH):
        drawn = np.zeros((min(BATCH, rounds - start), len(cells)))
        drawn[:, seen] = rng.multinomial(total, p, size=len(drawn))
        yield drawn


def rank_bounds(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each entrant's best and worst rank consistent with the intervals."""
    above = (low[np.newaxis, :] > high[:, np.newaxis]).sum(axis=1)
    below = (high[np.newaxis, :] < low[:, np.newaxis]).sum(axis=1)
    return 1 + above, len(low) - below


def rate(
    counts: PairCounts,
    *,
    rounds: int = ROUNDS,
    seed: int = 0,
    draws: Draws = "half",
    excluded: dict[str, int] | None = None,
) -> Leaderboard:
    """Ratings, intervals, ranks, records and the pairwise matrix; entrants best first."""
    names = list(counts.names)
    n = len(names)
    design = _Design(counts.first, counts.second, n)
    won, drew, lost = (
        counts.wins.astype(float),
        counts.draws.astype(float),
        counts.losses.astype(float),
    )
    total = counts.games
    likelihood: dict[str, float] = {}
    nu: float | None = None
    first_seat = {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "games": 0.0}
    if total:
        fits = {model: _fit(model, design, won, drew, lost) for model in DRAW_MODELS}
        likelihood = {m: _log_likelihood(m, c, design, won, drew, lost) for m, c in fits.items()}
        nu = math.exp(fits["davidson"][n + 1])
        coef = fits[draws]
        point = _points(coef, n)
        mean_score = float((won.sum() + 0.5 * drew.sum()) / total)
        first_seat = {"mean": mean_score, "ci_low": mean_score, "ci_high": mean_score}
        if total > 1:
            samples, scores = _bootstrap(draws, design, won, drew, lost, coef, rounds, seed)
            tails = [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)]
            low, high = np.percentile(samples, tails, axis=0)
            first_seat["ci_low"], first_seat["ci_high"] = np.percentile(scores, tails)
        else:
            low, high = point - np.inf, point + np.inf
        first_seat["games"] = float(total)
    else:
        point = np.append(np.full(n, CENTER), 0.0)
        low, high = point - np.inf, point + np.inf
    # An entrant without games keeps the prior's rating in every resample: a zero-width
    # interval that would claim a certain rank. It has no interval, and any rank.
    unplayed = np.bincount(counts.first, minlength=n) + np.bincount(counts.second, minlength=n)
    low[:n][unplayed == 0], high[:n][unplayed == 0] = -np.inf, np.inf
    best, worst = rank_bounds(low[:n], high[:n])
    shared = Counter(best.tolist())
    standings = [
        Standing(
            name, float(point[i]), float(low[i]), float(high[i]),
            rank=int(best[i]), rank_worst=int(worst[i]), tied=shared[int(best[i])] > 1,
        )
        for i, name in enumerate(names)
    ]  # fmt: skip
    _count(standings, counts)
    standings.sort(key=lambda s: (-s.rating, s.name))
    return Leaderboard(
        entrants=standings,
        seat_advantage={
            "rating": float(point[n]),
            "ci_low": float(low[n]),
            "ci_high": float(high[n]),
        },
        first_seat_score=first_seat,
        pairwise=_pairwise(counts),
        games=total,
        rounds=rounds,
        seed=seed,
        draws=draws,
        log_likelihood=likelihood,
        draw_parameter=nu,
        excluded=excluded or {},
    )


def _bootstrap(
    model: Draws,
    design: _Design,
    won: np.ndarray,
    drew: np.ndarray,
    lost: np.ndarray,
    coef: np.ndarray,
    rounds: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each resample's ratings and seat in points, and the first seat's mean score."""
    pairs = len(won)
    samples = np.empty((rounds, design.k))
    scores = np.empty(rounds)
    row = 0
    for batch in _resamples(np.concatenate([won, drew, lost]), rounds, seed):
        for drawn in batch:
            rwon, rdrew, rlost = drawn[:pairs], drawn[pairs : 2 * pairs], drawn[2 * pairs :]
            samples[row] = _points(_fit(model, design, rwon, rdrew, rlost, start=coef), design.n)
            scores[row] = (rwon.sum() + 0.5 * rdrew.sum()) / drawn.sum()
            row += 1
    return samples, scores


def _count(standings: list[Standing], counts: PairCounts) -> None:
    n = len(standings)

    def per_entrant(first: np.ndarray, second: np.ndarray) -> list[int]:
        both = np.bincount(counts.first, first, n) + np.bincount(counts.second, second, n)
        return [int(x) for x in both]

    wins = per_entrant(counts.wins, counts.losses)
    draws = per_entrant(counts.draws, counts.draws)
    losses = per_entrant(counts.losses, counts.wins)
    for i, s in enumerate(standings):
        s.wins, s.draws, s.losses = wins[i], draws[i], losses[i]
        s.games = wins[i] + draws[i] + losses[i]


def _pairwise(counts: PairCounts) -> dict[str, dict[str, dict[str, float | None]]]:
    names = counts.names
    tally: dict[tuple[int, int], list[int]] = {}
    for a, b, first_won, drew, first_lost in zip(
        counts.first.tolist(), counts.second.tolist(), counts.wins.tolist(),
        counts.draws.tolist(), counts.losses.tolist(), strict=True,
    ):  # fmt: skip
        for me, other, won, lost in ((a, b, first_won, first_lost), (b, a, first_lost, first_won)):
            row = tally.setdefault((me, other), [0, 0, 0])
            row[0] += won
            row[1] += drew
            row[2] += lost
    table: dict[str, dict[str, dict[str, float | None]]] = {a: {} for a in names}
    for i, me in enumerate(names):
        for j, other in enumerate(names):
            if i == j:
                continue
            wins, drawn, losses = tally.get((i, j), (0, 0, 0))
            played = wins + drawn + losses
            # None for a pair that never met (a gauntlet's challengers): JSON has no NaN.
            rate = (wins + 0.5 * drawn) / played if played else None
            table[me][other] = {"wins": wins, "draws": drawn, "losses": losses, "win_rate": rate}
    return table
