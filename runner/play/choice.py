"""Asking a model for one choice and a reason in structured output: a jury's vote on the
motion, a tournament judge's verdict on a game.

Both ask the same way: the reply is held to a JSON Schema of two keys, the choice and a
reason; a reply that does not follow it is asked for again (``SCHEMA_ATTEMPTS`` at most,
each attempt with a seed of its own); a server's failure, after the model's own retries,
is an answer not given, never a crash. Each caller keeps its own record type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from agents.backends.base import ChatRequest
from agents.errors import BackendError
from runner.model.handle import Model
from runner.play.recorder import now_iso

# The two presentation orders every choice is asked in: small models favour a position.
Order = Literal["as_seated", "swapped"]
ORDERS: tuple[Order, Order] = ("as_seated", "swapped")
SCHEMA_ATTEMPTS = 3  # replies that do not follow the schema are asked for again this often


def parse(raw: str, key: str, choices: Sequence[str]) -> tuple[str, str] | None:
    """(choice, reason) from a reply that follows the schema, else None."""
    try:
        # strict=False: a raw newline inside the reason (small models write them, and
        # llama.cpp's grammar lets them through) does not make an answer invalid.
        data = json.loads(raw, strict=False)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    choice, reason = data.get(key), data.get("reason")
    if not isinstance(choice, str) or choice not in choices or not isinstance(reason, str):
        return None
    return choice, reason.strip()


@dataclass(slots=True)
class Answer:
    """What asking came to: the fields every record of it carries (the last attempt's
    seed, the number of attempts, when it was asked, and the raw reply and its tokens if
    one came), and the choice and reason, or why there is none."""

    fields: dict[str, Any] = field(default_factory=dict)
    choice: str | None = None
    reason: str | None = None
    error: str | None = "not asked"


async def ask(
    model: Model,
    request: ChatRequest,
    *,
    key: str,
    seed_of: Callable[[int], int],
    what: str,
) -> Answer:
    """Ask until a reply follows ``request``'s JSON Schema, whose ``key`` is an enum of
    choices beside a reason; ``seed_of(attempt)`` seeds each attempt, ``what`` names the
    schema in the error."""
    json_schema = request.config.json_schema
    assert json_schema is not None
    choices = json_schema["properties"][key]["enum"]
    answer = Answer()
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        seed = seed_of(attempt)
        config = request.config.model_copy(update={"seed": seed})
        fields: dict[str, Any] = {"seed": seed, "attempts": attempt, "at": now_iso()}
        try:
            result = await model.generate(replace(request, config=config))
        except BackendError as exc:
            return Answer(fields, error=f"{exc.kind}: {exc.message}")
        fields |= {
            "raw": result.text,
            "prompt_tokens": result.final.prompt_tokens,
            "completion_tokens": result.final.completion_tokens,
        }
        parsed = parse(result.text, key, choices)
        if parsed is not None:
            return Answer(fields, choice=parsed[0], reason=parsed[1], error=None)
        answer = Answer(fields, error=f"the reply did not follow the {what} schema")
    return answer
