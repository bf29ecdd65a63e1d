"""The judge: a model that reads a finished game, anonymised, and names the better speaker.

Every game is judged twice, with the speakers' labels swapped (small judges favour a
position); a verdict must follow a JSON schema (winner first/second/draw and a reason),
is retried when it does not, and is recorded as no verdict, never guessed, when it still
does not. The verdicts, with the judge's raw replies, seeds and token counts, are appended
to the game's transcript after its end line.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any, Literal

from agents.backends.base import ChatRequest, Message
from runner.model.handle import Model
from runner.play import choice
from runner.play.choice import ORDERS, Order
from runner.play.seeds import derive_seed
from runner.tournament.spec import Judge
from runner.transcript import Transcript, VerdictRecord

Winner = Literal["first", "second", "draw"]
WINNERS: tuple[Winner, ...] = ("first", "second", "draw")

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "winner": {"enum": list(WINNERS)},
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


def parse(raw: str) -> tuple[Winner, str] | None:
    """(winner, reason) from a reply that follows the schema, else None."""
    return typing.cast("tuple[Winner, str] | None", choice.parse(raw, "winner", WINNERS))


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
    """Ask until a reply follows the schema (:func:`runner.play.choice.ask`); record what came."""
    assert transcript.run is not None
    speakers = {label: name for name, label in labels(transcript, order).items()}
    messages = prompt(transcript, judge, order)
    config = judge.options.model_copy(update={"json_schema": VERDICT_SCHEMA})
    answer = await choice.ask(
        model,
        ChatRequest(judge.model, messages, config),
        key="winner",
        seed_of=lambda attempt: derive_seed(seed, "judge", order, attempt),
        what="verdict",
    )
    winner = typing.cast("Winner | None", answer.choice)  # one of the schema's, or none
    label = {"first": "Speaker 1", "second": "Speaker 2"}.get(winner or "")
    return VerdictRecord(
        conversation_id=transcript.run.conversation_id,
        judge_model=judge.model,
        order=order,
        **answer.fields,
        winner=winner,
        speaker=speakers.get(label or ""),
        reason=answer.reason,
        error=answer.error,
    )
