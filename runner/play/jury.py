"""The jury: judge models voting on the motion before and after a debate.

A vote is structured output (``vote``: for, against or undecided, and a ``reason``),
asked again when a reply does not follow the schema and recorded as no vote, never
guessed, when it still does not. Every judge votes in both presentation orders (the
proposition presented first, then the opposition; before the debate, the choices listed
in both orders): small models favour a position, so a judge's vote counts only when its
two orders agree, and is undecided otherwise. Each vote is its own transcript record.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any, Literal

from agents.backends.base import ChatRequest, Message
from runner.model.handle import Model
from runner.play import choice
from runner.play.choice import Order
from runner.play.seeds import derive_seed
from runner.scenario.debate import Juror, Jury, Sides, Stage
from runner.transcript import Outcome, TurnRecord, VoteRecord

Vote = Literal["for", "against", "undecided"]

VOTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vote": {"enum": ["for", "against", "undecided"]},
        "reason": {"type": "string", "maxLength": 200},
    },
    "required": ["vote", "reason"],
    "additionalProperties": False,
}
SIDE_OF_VOTE = {"for": "proposition", "against": "opposition"}


def prompt(
    stage: Stage,
    order: Order,
    motion: str,
    jury: Jury,
    turns: Sequence[TurnRecord],
    sides: Sides,
) -> list[Message]:
    """A judge's request: before, the motion alone; after, the debate with its speakers
    anonymised (the side presented first is Speaker 1)."""
    choices = (
        '"for", "against" or "undecided"'
        if order == "as_seated"
        else ('"against", "for" or "undecided"')
    )
    answer = f'Answer with JSON only: {{"vote": {choices}, "reason": one short sentence}}.'
    if stage == "before":
        system = (
            "You are a member of a debate's audience. The debate has not begun. Say where "
            f"you stand on the motion now. {answer}"
        )
        user = f"The motion: {motion}\n\nYour vote on the motion: {choices}?"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    first, second = (
        ("proposition", "opposition") if order == "as_seated" else ("opposition", "proposition")
    )
    label = {getattr(sides, first): "Speaker 1", getattr(sides, second): "Speaker 2"}
    lines = [
        f"{label.get(t.speaker, t.speaker if t.role == 'moderator' else 'Someone')}: "
        f"{t.content.strip()}"
        for t in turns
    ]
    stance = {"proposition": "for", "opposition": "against"}
    system = (
        "You are a judge of a debate between Speaker 1 and Speaker 2. "
        f"{jury.rubric} Then vote on the motion as the debate has left you. {answer}"
    )
    user = (
        f"The motion: {motion}\nSpeaker 1 argued {stance[first]} it, Speaker 2 "
        f"{stance[second]} it.\n\nThe debate:\n"
        + "\n".join(lines)
        + f"\n\nYour vote on the motion: {choices}?"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


async def cast(
    model: Model,
    juror: Juror,
    jury: Jury,
    stage: Stage,
    order: Order,
    messages: list[Message],
    *,
    seed: int,
    self_judged: bool,
) -> VoteRecord:
    """Ask until a reply follows the schema (:func:`runner.play.choice.ask`); record what
    came. A server's failure (after the model's own retries) is a vote not cast, not a crash."""
    config = jury.options_of(juror).model_copy(update={"json_schema": VOTE_SCHEMA})
    answer = await choice.ask(
        model,
        ChatRequest(juror.model, messages, config),
        key="vote",
        seed_of=lambda attempt: derive_seed(seed, "vote", juror.name, stage, order, attempt),
        what="vote",
    )
    vote = typing.cast(Vote | None, answer.choice)  # one of the schema's, or none
    return VoteRecord(
        judge=juror.name,
        model=juror.model,
        stage=stage,
        order=order,
        self_judged=self_judged,
        **answer.fields,
        vote=vote,
        side=SIDE_OF_VOTE.get(vote or ""),
        reason=answer.reason,
        error=answer.error,
    )


def tally(votes: Sequence[VoteRecord], stage: Stage) -> dict[str, int]:
    """For, against and undecided at ``stage``: a judge's vote counts when its two orders
    agree; otherwise (or without a valid vote) it is undecided."""
    by_judge: dict[str, list[str | None]] = {}
    for vote in votes:
        if vote.stage == stage:
            by_judge.setdefault(vote.judge, []).append(vote.vote)
    counts = {"for": 0, "against": 0, "undecided": 0}
    for cast_votes in by_judge.values():
        agreed = cast_votes[0] if len(set(cast_votes)) == 1 else None
        counts[agreed if agreed in ("for", "against") else "undecided"] += 1
    return counts


def verdict(jury: Jury, votes: Sequence[VoteRecord], sides: Sides, turn: int) -> Outcome:
    """The jury's decision: by votes moved (after minus before, per side), or by the
    majority after the debate; a tie is a draw."""
    counts = {stage: tally(votes, stage) for stage in jury.stages}
    after = counts["after"]
    if jury.decide == "moved":
        before = counts["before"]
        score = (after["for"] - before["for"]) - (after["against"] - before["against"])
    else:
        score = after["for"] - after["against"]
    winner = "proposition" if score > 0 else "opposition" if score < 0 else None
    loser = {"proposition": "opposition", "opposition": "proposition"}.get(winner or "")
    return Outcome(
        winner=getattr(sides, winner) if winner else None,
        loser=getattr(sides, loser) if loser else None,
        reason="jury",
        rule=jury.decide,
        turn=turn,
        votes=counts,
    )
