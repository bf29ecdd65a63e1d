"""The one binomial interval tournaments print beside a rate: Wilson's score interval."""

from __future__ import annotations

CONFIDENCE = 0.95


def wilson(k: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of k successes in n > 0 trials, rounded to 3 places
    (scipy.stats.binomtest)."""
    from scipy.stats import binomtest

    interval = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return round(float(interval.low), 3), round(float(interval.high), 3)
