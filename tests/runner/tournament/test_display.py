"""How the tournament's displays say things."""

from __future__ import annotations

import pytest

from runner.tournament.display import duration


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0.2, "1 s"), (30, "30 s"), (89, "89 s"), (90, "2 min"), (725, "12 min"), (12_600, "3.5 h")],
)
def test_a_time_left_is_never_rounded_to_nothing(seconds: float, said: str) -> None:
    assert duration(seconds) == said
