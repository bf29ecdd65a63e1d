"""How alike two turns are, and which repetitions are stalemates."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runner.play.rules.stalemate import Repetition, similarity


@dataclass(frozen=True)
class Line:
    speaker: str
    content: str


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("I lost.", "i LOST!", 1.0),  # case and punctuation do not matter
        ("You’re right", "You're right", 1.0),
        ("", "", 1.0),
        ("one two three four", "one two three five", 0.75),
        ("a b c d e f g h i j", "a b c d e f g h i k", 0.9),
        ("cats", "dogs", 0.0),
    ],
)
def test_similarity_is_the_share_of_words_in_common(a: str, b: str, expected: float) -> None:
    assert similarity(a, b) == pytest.approx(expected)


def test_word_order_matters() -> None:
    assert similarity("dogs chase cats", "cats chase dogs") < 0.5


def test_own_repetition_needs_every_turn_alike_the_latest() -> None:
    find = Repetition(repeats=3, threshold=0.9, max_period=4).find
    same = [Line("A", "x y z"), Line("B", "1"), Line("A", "x y z"), Line("B", "2")]
    assert find([*same, Line("A", "x y z")]) == "x y z"
    assert find([*same, Line("A", "x y w")]) is None
    assert find([]) is None


def test_cycles_longer_than_the_limit_are_not_looked_for() -> None:
    block = [Line("A", "a"), Line("A", "b"), Line("A", "c")]
    assert Repetition(3, 0.9, max_period=3).find(block * 3) == "c"
    assert Repetition(3, 0.9, max_period=2).find(block * 3) is None
