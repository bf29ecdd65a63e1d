"""What a conversation tells its observers (a live display, a progress bar), as typed events.

Observers get the same typed records the transcript holds, so a display never reads a
conversation's internals or recomputes what the conversation already knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.transcript import EndRecord, PhaseRecord, RunRecord, TurnRecord, VoteRecord


@dataclass(frozen=True, slots=True)
class ConversationStarted:
    run: RunRecord
    path: Path  # the transcript being written


@dataclass(frozen=True, slots=True)
class PhaseStarted:
    record: PhaseRecord


@dataclass(frozen=True, slots=True)
class TurnStarted:
    conversation_id: str
    speaker: str
    model: str
    scripted: bool
    round: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    conversation_id: str
    speaker: str
    text: str


@dataclass(frozen=True, slots=True)
class Retrying:
    """An attempt failed and will be retried: a live display drops the half-streamed text."""

    conversation_id: str
    speaker: str
    model: str
    kind: str  # the error's kind (timeout, server_error, ...)
    message: str
    attempt: int  # the attempt that failed, from 1
    wait: float  # seconds before the next one


@dataclass(frozen=True, slots=True)
class TurnFinished:
    record: TurnRecord


@dataclass(frozen=True, slots=True)
class VoteCast:
    record: VoteRecord


@dataclass(frozen=True, slots=True)
class ConversationFinished:
    run: RunRecord
    end: EndRecord
    path: Path
    ordinal: int = 0  # the conversation's place in its run's plan


class Observer:
    """Hooks for a display. Every method is optional; the default does nothing.

    Observers run on the event loop between turns: they must not block.
    """

    def conversation_started(self, event: ConversationStarted) -> None: ...
    def phase_started(self, event: PhaseStarted) -> None: ...
    def turn_started(self, event: TurnStarted) -> None: ...
    def delta(self, event: TextDelta) -> None: ...
    def retrying(self, event: Retrying) -> None: ...
    def turn_finished(self, event: TurnFinished) -> None: ...
    def vote_cast(self, event: VoteCast) -> None: ...
    def conversation_finished(self, event: ConversationFinished) -> None: ...


class Observers(Observer):
    """Several observers as one: each event goes to each, in order."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def conversation_started(self, event: ConversationStarted) -> None:
        for o in self.observers:
            o.conversation_started(event)

    def phase_started(self, event: PhaseStarted) -> None:
        for o in self.observers:
            o.phase_started(event)

    def turn_started(self, event: TurnStarted) -> None:
        for o in self.observers:
            o.turn_started(event)

    def delta(self, event: TextDelta) -> None:
        for o in self.observers:
            o.delta(event)

    def retrying(self, event: Retrying) -> None:
        for o in self.observers:
            o.retrying(event)

    def turn_finished(self, event: TurnFinished) -> None:
        for o in self.observers:
            o.turn_finished(event)

    def vote_cast(self, event: VoteCast) -> None:
        for o in self.observers:
            o.vote_cast(event)

    def conversation_finished(self, event: ConversationFinished) -> None:
        for o in self.observers:
            o.conversation_finished(event)
