"""The generation config: one typed, frozen set of options carried to every backend.

Scenarios write it under ``options:`` (in ollama's vocabulary, the primary engine's),
the runner merges defaults and agent options once, and each backend maps the fields it
supports (:meth:`GenerateConfig.sent`) and names the rest (``unsupported``) so a run can
warn once and the transcript can record what was not sent.
"""

from __future__ import annotations

import re
import reprlib
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

MAX_NUM_PREDICT = 1_000_000
MAX_NUM_CTX = 1_048_576
MAX_SEED = 2**32 - 1

# Go duration strings as ollama parses them ("5m", "1h30m", "-1s"), or plain seconds.
_DURATION = re.compile(r"-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")


def _listify(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if value is not None and not isinstance(value, list | tuple):
        raise ValueError(f"expected text or a list of texts; got {reprlib.repr(value)}")
    return value


def _keep_alive(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


class GenerateConfig(BaseModel):
    """Sampling, load and output options for one request. ``None`` means the engine's default."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    temperature: Annotated[float, Field(ge=0, le=100)] | None = Field(
        None, description="sampling temperature; 0 is greedy"
    )
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = Field(
        None, description="sampling seed; derived per agent and turn when not set"
    )
    num_predict: Annotated[int, Field(ge=-2, le=MAX_NUM_PREDICT)] | None = Field(
        None, description="most tokens per reply; -1 no limit (-2: fill the context, ollama)"
    )
    top_p: Annotated[float, Field(ge=0, le=1)] | None = Field(None, description="nucleus sampling")
    top_k: Annotated[int, Field(ge=0, le=MAX_NUM_PREDICT)] | None = Field(
        None, description="sample from the k most likely tokens"
    )
    min_p: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="drop tokens less likely than min_p times the most likely one"
    )
    stop: (
        Annotated[
            list[Annotated[str, Field(min_length=1)]],
            BeforeValidator(_listify, json_schema_input_type=str | list[str]),
        ]
        | None
    ) = Field(None, max_length=16, description="stop sequences (a string or a list)")
    repeat_penalty: Annotated[float, Field(ge=0, le=10)] | None = Field(
        None, description="penalty for repeating tokens"
    )
    num_ctx: Annotated[int, Field(ge=1, le=MAX_NUM_CTX)] | None = Field(
        None,
        description="context size, a load-time option: keep it fixed per model within a run",
    )
    keep_alive: Annotated[str | int | float, BeforeValidator(_keep_alive)] | None = Field(
        None,
        description="how long the server keeps the model loaded after a request "
        '("5m", seconds; 0 unloads it at once, negative keeps it loaded) - ollama',
    )
    json_schema: dict[str, Any] | None = Field(
        None, description="a JSON Schema the reply must follow (structured output)"
    )

    @field_validator("keep_alive")
    @classmethod
    def _duration(cls, value: str | int | float | None) -> str | int | float | None:
        if isinstance(value, str) and not _DURATION.fullmatch(value.strip()):
            raise ValueError(f"expected a duration like '5m', '1h30m' or seconds; got {value!r}")
        return value

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not value:
            raise ValueError("an empty schema constrains nothing; leave json_schema out instead")
        return value

    def merged(self, over: GenerateConfig) -> GenerateConfig:
        """These options, with every option ``over`` sets taking precedence."""
        return self.model_copy(update=over.set_fields())

    def set_fields(self) -> dict[str, Any]:
        """The options that are set, by name (what a transcript records)."""
        return {name: value for name, value in self if value is not None}

    def unsupported(self, supported: frozenset[str]) -> list[str]:
        """Set options outside ``supported``: a backend cannot send them."""
        return sorted(name for name in self.set_fields() if name not in supported)


FIELDS = frozenset(GenerateConfig.model_fields)
