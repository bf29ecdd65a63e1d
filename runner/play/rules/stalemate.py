"""Stalemates: a speaker saying the same thing over and over, or the conversation cycling.

Two turns are alike when the share of words they have in common, in order, is at least
the rule's ``similarity``: difflib's ratio over their words (2 x matching words / all
words), after folding case, punctuation and typographic quotes. 1.0 means the same words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Protocol

from runner.play.rules.text import fold

WORD = re.compile(r"\w+")


class Said(Protocol):
    """A turn as the referee sees it (a transcript's TurnRecord is one)."""

    @property
    def speaker(self) -> str: ...

    @property
    def content(self) -> str: ...


def words(text: str) -> list[str]:
    return WORD.findall(fold(text).casefold())


def similarity(a: str, b: str) -> float:
    """The share of words ``a`` and ``b`` have in common, in order: 1.0 for the same words."""
    wa, wb = words(a), words(b)
    if not wa and not wb:
        return 1.0  # two empty replies are the same reply
    return SequenceMatcher(None, wa, wb, autojunk=False).ratio()


class Repetition:
    """Finds the turn that completes a stalemate.

    A speaker repeats itself when each of its last ``repeats`` turns is alike its latest
    one. The conversation cycles when its last turns are one block of ``period`` turns said
    ``repeats`` times in a row (each turn alike the one ``period`` turns before it), for a
    period of up to ``max_period`` turns: someone echoing the other, or alternating between
    two answers while the other repeats itself.
    """

    def __init__(self, repeats: int, threshold: float, max_period: int) -> None:
        self.repeats = repeats
        self.threshold = threshold
        self.max_period = max_period

    def alike(self, a: Said, b: Said) -> bool:
        return similarity(a.content, b.content) >= self.threshold

    def find(self, turns: Sequence[Said]) -> str | None:
        """What the last of ``turns`` repeats, if it completes a stalemate; else None."""
        if not turns:
            return None
        last = turns[-1]
        own = [t for t in turns if t.speaker == last.speaker][-self.repeats :]
        if len(own) == self.repeats and all(self.alike(t, last) for t in own[:-1]):
            return last.content
        for period in range(1, self.max_period + 1):
            span = period * self.repeats
            if span > len(turns):
                break
            tail = turns[-span:]
            if all(self.alike(tail[i], tail[i + period]) for i in range(span - period)):
                return last.content
        return None
