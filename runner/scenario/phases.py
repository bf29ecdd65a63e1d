"""Phases: a conversation played in named stages, as the schema reads them.

A scenario with ``phases`` plays them in order, each with its own speakers (in the order
listed), turns per speaker, an instruction added to each speaker's prompt and a budget
per speech; a phase may give speakers a fixed line (``script``) instead of generating.
Without ``phases`` a scenario plays its flat loop (``order``, ``max_turns``) as before.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from runner.scenario.ending import _Strict
from runner.scenario.limits import MAX_AGENTS, MAX_NAME, MAX_TURNS

MAX_PHASES = 64
MAX_BUDGET = 100_000  # tokens or words in one speech

WORD = re.compile(r"\S+")


def count_words(text: str) -> int:
    """Words as a budget counts them: runs of non-space characters."""
    return len(WORD.findall(text))


class Budget(_Strict):
    """How long one speech may be: ``tokens`` is the engine's limit (the reply stops
    there), ``words`` is counted afterwards; either overrun is recorded on the turn."""

    tokens: Annotated[int, Field(gt=0, le=MAX_BUDGET)] | None = Field(
        None, description="the most tokens a speech may have: sent as num_predict"
    )
    words: Annotated[int, Field(gt=0, le=MAX_BUDGET)] | None = Field(
        None, description="the most words a speech should have: counted, an overrun recorded"
    )

    @field_validator("tokens", "words", mode="before")
    @classmethod
    def _positive(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
            raise ValueError(f"a budget is a positive number; got {value}")
        return value

    @model_validator(mode="after")
    def _something(self) -> Budget:
        if self.tokens is None and self.words is None:
            raise ValueError("a budget sets tokens, words or both")
        return self


class Phase(_Strict):
    """One stage of the conversation."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)] = Field(
        description="shown in transcripts, e.g. Opening statements"
    )
    speakers: Annotated[list[str], Field(min_length=1, max_length=MAX_AGENTS)] = Field(
        description="agent names, in speaking order"
    )
    turns: Annotated[int, Field(ge=1, le=MAX_TURNS)] = Field(
        1, description="how many times each speaker speaks in this phase"
    )
    instruction: str | None = Field(
        None, description="added to each speaker's prompt for this phase; {placeholders} allowed"
    )
    budget: Budget | None = Field(None, description="the length of each speech")
    script: dict[str, str] | None = Field(
        None,
        description="speaker -> a fixed line said verbatim in this phase (never generated, "
        "never checked by end rules); speakers not listed generate",
    )

    @property
    def length(self) -> int:
        """Turns this phase takes when every speaker speaks every time."""
        return len(self.speakers) * self.turns


Phases = Annotated[list[Phase], Field(max_length=MAX_PHASES)]
