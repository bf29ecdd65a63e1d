"""Bootstrap confidence intervals over conversations, seeded.

Every metric is a ratio of sums over conversations (``sum(num) / sum(den)``): a rate is
events over opportunities, a mean is a total over a count. Resampling whole conversations
(a cluster bootstrap) keeps the turns of one conversation together, since they are not
independent of each other. scipy's ``bootstrap`` draws the resamples; the percentile method
is used because BCa's jackknife costs time quadratic in the number of conversations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
METHOD = "percentile"
BATCH = 250  # resamples drawn at once: bounds memory at 10,000 conversations


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric's value with its interval; ``n`` conversations contributed to it."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "value": _round(self.value),
            "ci_low": _round(self.ci_low),
            "ci_high": _round(self.ci_high),
            "n": self.n,
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _ratio(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(num.sum(axis=axis) / den.sum(axis=axis))


def ratio_estimate(
    num: np.ndarray,
    den: np.ndarray,
    *,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """``sum(num) / sum(den)`` over the conversations with ``den > 0``, with a bootstrap
    interval; no interval from fewer than two conversations."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    keep = den > 0
    num, den = num[keep], den[keep]
    n = len(num)
    if n == 0:
        return Estimate(None, None, None, 0)
    value = float(num.sum() / den.sum())
    if n < 2:
        return Estimate(value, None, None, n)
    if np.all(num * den[0] == num[0] * den):
        # Every conversation has the same ratio: so has every resample.
        return Estimate(value, value, value, n)
    result = bootstrap(
        (num, den),
        _ratio,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        batch=BATCH,
        confidence_level=confidence,
        method=METHOD,
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return Estimate(value, float(low), float(high), n)
