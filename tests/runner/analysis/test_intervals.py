"""Bootstrap intervals: seeded, over conversations, sensible at the edges."""

from __future__ import annotations

import numpy as np

from runner.analysis.intervals import ratio_estimate


def test_the_interval_covers_a_known_rate() -> None:
    rng = np.random.default_rng(7)
    wins = rng.random(400) < 0.3
    e = ratio_estimate(wins.astype(float), np.ones(400))
    assert e.ci_low is not None and e.ci_high is not None
    assert e.ci_low < 0.3 < e.ci_high
    # About two standard errors each side: sqrt(0.3 * 0.7 / 400) is 0.023.
    assert 0.06 < e.ci_high - e.ci_low < 0.12
    assert e.n == 400


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    rng = np.random.default_rng(1)
    num, den = rng.poisson(20, 50).astype(float), rng.integers(1, 6, 50).astype(float)
    first = ratio_estimate(num, den, seed=5)
    assert ratio_estimate(num, den, seed=5) == first
    assert ratio_estimate(num, den, seed=6) != first


def test_a_mean_per_turn_weights_conversations_by_their_turns() -> None:
    # 10 words over 1 turn and 30 words over 3 turns: 40 / 4 = 10 words a turn.
    e = ratio_estimate(np.array([10.0, 30.0, 0.0]), np.array([1.0, 3.0, 0.0]))
    assert e.value == 10.0
    assert e.n == 2  # the conversation without a turn does not count


def test_no_interval_from_one_conversation_and_no_value_from_none() -> None:
    one = ratio_estimate(np.array([3.0]), np.array([1.0]))
    assert (one.value, one.ci_low, one.ci_high, one.n) == (3.0, None, None, 1)
    none = ratio_estimate(np.array([0.0, 0.0]), np.array([0.0, 0.0]))
    assert (none.value, none.n) == (None, 0)


def test_identical_conversations_give_a_point_interval() -> None:
    e = ratio_estimate(np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0]))
    assert (e.value, e.ci_low, e.ci_high) == (2.0, 2.0, 2.0)
