"""The judge: a model that reads a finished game, anonymised, and names the better speaker.

Every game is judged twice, with the speakers' labels swapped (small judges favour a
position); a verdict must follow a JSON schema (winner first/second/draw and a reason),
is retried when it does not, and is recorded as no verdict, never guessed, when it still
does not. The verdicts, with the judge's raw replies, seeds and token counts, are appended
to the game's transcript after its end line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from agents.backends.base import ChatRequest, Message
from agents.errors import BackendError
from runner.model.handle import Model
from runner.play.recorder import now_iso
from runner.play.seeds import derive_seed
from runner.tournament.spec import Judge
from runner.transcript import Transcript, VerdictRecord

Order = Literal["as_seated", "swapped"]
ORDERS: tuple[Order, Order] = ("as_seated", "swapped")
SCHEMA_ATTEMPTS = 3  # replies that do not follow the schema are asked for again this often

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "winner": {"enum": ["first", "second", "draw"]},
        "reason": {"type": "string", "maxLength": 300},
    },
    "required": ["winner", "reason"],
    "additionalProperties": False,
}


def labels(transcript: Transcript, order: Order) -> dict[str, str]:
    """Agent name -> "Speaker 1"/"Speaker 2" for this presentation."""
    assert transcript.run is not None
    first, second = (a.name for a in transcript.run.agents)
    if order == "swapped":
        first, second = second, first
    return {first: "Speaker 1", second: "Speaker 2"}


def prompt(transcript: Transcript, judge: Judge, order: Order) -> list[Message]:
    """The judge's request: the rubric, then the conversation with speakers anonymised."""
    assert transcript.run is not None
    names = labels(transcript, order)
    lines = [f"{names.get(t.speaker, 'Someone')}: {t.content.strip()}" for t in transcript.turns]
    description = transcript.run.description.strip()
    system = (
        "You are the impartial referee of a conversation between two speakers, Speaker 1 "
        f"and Speaker 2. {judge.rubric.strip()} Answer with JSON only: "
        '{"winner": "first" (Speaker 1), "second" (Speaker 2) or "draw", '
        '"reason": one short sentence}.'
    )
    user = (
        (f"The game: {description}\n\n" if description else "")
        + "The conversation:\n"
        + "\n".join(lines)
        + "\n\nWho did better, Speaker 1 (first) or Speaker 2 (second)?"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse(raw: str) -> tuple[Literal["first", "second", "draw"], str] | None:
    """(winner, reason) from a reply that follows the schema, else None."""
    try:
        # strict=False: a raw newline inside the reason (small models write them, and
        # llama.cpp's grammar lets them through) does not make a verdict invalid.
        data = json.loads(raw, strict=False)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    winner, reason = data.get("winner"), data.get("reason")
    if winner not in ("first", "second", "draw") or not isinstance(reason, str):
        return None
    return winner, reason.strip()


async def judge_game(
    model: Model,
    judge: Judge,
    transcript: Transcript,
    *,
    seed: int,
    orders: Sequence[Order] = ORDERS,
) -> list[VerdictRecord]:
    """One verdict per presentation order (the server's failures are retried by the model's
    policy)."""
    return [await _verdict(model, judge, transcript, order, seed) for order in orders]


async def _verdict(
    model: Model, judge: Judge, transcript: Transcript, order: Order, seed: int
) -> VerdictRecord:
    """Ask until a reply follows the schema (SCHEMA_ATTEMPTS at most); record what came."""
    assert transcript.run is not None
    speakers = {label: name for name, label in labels(transcript, order).items()}
    messages = prompt(transcript, judge, order)
    base = {"conversation_id": transcript.run.conversation_id, "judge_model": judge.model}
    record = VerdictRecord(**base, order=order, error="not asked")
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        request_seed = derive_seed(seed, "judge", order, attempt)
        config = judge.options.model_copy(
            update={"seed": request_seed, "json_schema": VERDICT_SCHEMA}
        )
        request = ChatRequest(judge.model, messages, config)
        asked = {**base, "order": order, "seed": request_seed, "attempts": attempt, "at": now_iso()}
        try:
            result = await model.generate(request)
        except BackendError as exc:
            return VerdictRecord(**asked, error=f"{exc.kind}: {exc.message}")
        asked |= {
            "raw": result.text,
            "prompt_tokens": result.final.prompt_tokens,
            "completion_tokens": result.final.completion_tokens,
        }
        parsed = parse(result.text)
        if parsed is not None:
            winner, reason = parsed
            label = {"first": "Speaker 1", "second": "Speaker 2"}.get(winner)
            return VerdictRecord(
                **asked, winner=winner, speaker=speakers.get(label or ""), reason=reason
            )
        record = VerdictRecord(**asked, error="the reply did not follow the verdict schema")
    return record
