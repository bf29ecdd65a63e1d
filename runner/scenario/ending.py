"""How a conversation ends: the end rules a scenario lists, as the schema reads them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Stalemate(_Strict):
    """How much repetition ends a conversation as a stalemate."""

    repeats: int = Field(
        3, description="the same turn (or cycle of turns) this many times in a row, 2 to 50"
    )
    similarity: float = Field(
        0.9,
        description="how alike turns must be: the share of words in common, in order, "
        "0.5 to 1.0 (1.0: the same words)",
    )

    @field_validator("repeats")
    @classmethod
    def _repeats_range(cls, value: int) -> int:
        if not 2 <= value <= 50:
            raise ValueError(f"repeats counts turns said in a row: 2 to 50; got {value}")
        return value

    @field_validator("similarity")
    @classmethod
    def _similarity_range(cls, value: float) -> float:
        if not 0.5 <= value <= 1.0:
            raise ValueError(
                "similarity is the share of words two turns have in common: 0.5 to 1.0 "
                f"(1.0: the same words); got {value}"
            )
        return value


# Fields that read a turn's text, meaningless for a stalemate rule.
TEXT_FIELDS = ("ignore_quoted", "unless", "statements_only", "objects", "ignore_impersonated")


class EndRule(_Strict):
    """Ends the conversation when a generated turn says ``phrase``, matches ``regex``, or
    completes a ``stalemate``."""

    name: str | None = Field(None, description="a label for transcripts and summaries")
    phrase: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="whole words, any case, any whitespace between them"
    )
    regex: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="a Python regular expression, case-insensitive"
    )
    stalemate: Stalemate | None = Field(
        None, description="a speaker repeating itself, or the conversation cycling"
    )
    outcome: Literal["speaker_loses", "speaker_wins", "draw"]
    speakers: list[str] | None = Field(
        None, description="only these agents' turns are checked (default: everyone's)"
    )
    ignore_quoted: bool = Field(
        True, description="text in quotation marks is a quotation, not a statement: skip it"
    )
    unless: Annotated[list[str], Field(max_length=32)] = Field(
        [], description="a sentence that also matches one of these regexes does not count"
    )
    statements_only: bool | None = Field(
        None,
        description="only a statement counts, not a question, a negated, conditional or "
        "reported mention, or the phrase with an object of its own (default: true for "
        "phrase, false for regex)",
    )
    objects: Annotated[list[str], Field(max_length=64)] | Literal["any"] | None = Field(
        None,
        description="with statements_only: what may follow the phrase as its object and "
        "still count (default: this one, the game, the argument, ...); any: no object check",
    )
    ignore_impersonated: bool = Field(
        True,
        description="lines a speaker writes under another agent's name ('qwen: I lost.' "
        "in llama's turn) are not its words: skip them",
    )

    @model_validator(mode="after")
    def _one_matcher(self) -> EndRule:
        given = [k for k in ("phrase", "regex", "stalemate") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'phrase' or 'regex' (or 'stalemate' for a stalemate rule)"
            )
        if self.stalemate is not None:
            for key in TEXT_FIELDS:
                # Set to its default is no contradiction (a rule read back from a transcript).
                default = type(self).model_fields[key].default
                if key in self.model_fields_set and getattr(self, key) != default:
                    raise ValueError(
                        f"{key!r} applies to phrase and regex rules; "
                        "a stalemate rule compares whole turns"
                    )
        elif self.objects is not None and not self.reads_statements:
            raise ValueError(
                "'objects' needs statements_only: true (a regex rule's default is false)"
            )
        return self

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @field_validator("unless")
    @classmethod
    def _unless_compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            _compile(pattern)
        return value

    @field_validator("objects", mode="before")
    @classmethod
    def _objects_are_words(cls, value: Any) -> Any:
        # One clear message instead of one per member of the union.
        if isinstance(value, str) and value != "any":
            raise ValueError(f"expected a list of words or 'any'; got {value!r}")
        for item in value if isinstance(value, list) else []:
            if isinstance(item, str) and not item.split():
                raise ValueError("an object needs a visible word; got an empty one")
        return value

    @property
    def reads_statements(self) -> bool:
        """Whether questions, hedged mentions and other objects are told from statements."""
        if self.statements_only is not None:
            return self.statements_only
        return self.phrase is not None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.phrase is not None:
            return f"phrase {self.phrase!r}"
        return f"regex {self.regex!r}" if self.regex is not None else "stalemate"


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"malformed regex {pattern!r}: {exc}") from None
