"""The recorder: a conversation's transcript, written as typed records as it happens."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from runner.transcript import (
    EndRecord,
    ErrorInfo,
    Outcome,
    PhaseRecord,
    RunRecord,
    Status,
    Totals,
    TranscriptWriter,
    TurnRecord,
    VoteRecord,
    slug,
)

SCENARIO_IN_NAME = 40  # characters of the scenario's name in a transcript's file name


def iso(epoch: float) -> str:
    """UTC ISO 8601 with milliseconds, as every timestamp in a transcript."""
    stamp = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def now_iso() -> str:
    return iso(time.time())


def file_stem(scenario: str, repeat_index: int, conversation_id: str) -> str:
    """``YYYYMMDD-HHMMSS_<scenario>_<repeat>_<id>``: a long scenario name is shortened, never
    the repeat index or the id."""
    return (
        f"{datetime.now(UTC):%Y%m%d-%H%M%S}_{slug(scenario, SCENARIO_IN_NAME)}_"
        f"{repeat_index:03d}_{conversation_id}"
    )


def totals(turns: list[TurnRecord], failed_attempts: int = 0) -> Totals:
    """Sums over the turns; a token total is None when any generated turn lacks its count.

    ``failed_attempts`` counts the attempts of a turn that never succeeded (it has no line),
    so ``retries`` covers every retry the conversation made.
    """
    generated = [t for t in turns if not t.scripted]
    prompt = [t.prompt_tokens for t in generated]
    completion = [t.completion_tokens for t in generated]
    retries = sum(t.attempts - 1 for t in generated) + max(0, failed_attempts - 1)
    return Totals(
        turns=len(turns),
        generated_turns=len(generated),
        scripted_turns=len(turns) - len(generated),
        prompt_tokens=None if None in prompt else sum(p for p in prompt if p is not None),
        completion_tokens=(
            None if None in completion else sum(c for c in completion if c is not None)
        ),
        latency_ms=round(sum(t.latency_ms or 0 for t in generated), 3),
        retries=retries,
    )


class Recorder:
    """Writes one conversation's run, turn and end lines, and keeps its turns."""

    def __init__(self, out_dir: Path, run: RunRecord, stem: str | None = None) -> None:
        self.run = run
        self.turns: list[TurnRecord] = []
        self.votes: list[VoteRecord] = []
        self._started = time.monotonic()
        stem = stem or file_stem(run.scenario, run.repeat_index, run.conversation_id)
        self._writer = TranscriptWriter.create(out_dir, stem)
        self.path = self._writer.path
        self._writer.write(run)

    def turn(self, record: TurnRecord) -> TurnRecord:
        """Number the turn, stamp it with the conversation's id, and write it."""
        numbered = record.model_copy(
            update={"index": len(self.turns), "conversation_id": self.run.conversation_id}
        )
        self._writer.write(numbered)  # raises before the turn counts if it cannot be written
        self.turns.append(numbered)
        return numbered

    def phase(self, record: PhaseRecord) -> PhaseRecord:
        """Write the start of a phase, stamped with the conversation's id."""
        stamped = record.model_copy(
            update={"conversation_id": self.run.conversation_id, "first_turn": len(self.turns)}
        )
        self._writer.write(stamped)
        return stamped

    def vote(self, record: VoteRecord) -> VoteRecord:
        """Write one judge's vote, stamped with the conversation's id."""
        stamped = record.model_copy(update={"conversation_id": self.run.conversation_id})
        self._writer.write(stamped)
        self.votes.append(stamped)
        return stamped

    def end(
        self,
        status: Status,
        outcome: Outcome,
        error: ErrorInfo | None = None,
        failed_attempts: int = 0,
    ) -> EndRecord:
        """Write the end line and close the file (also when that write fails)."""
        record = EndRecord(
            conversation_id=self.run.conversation_id,
            status=status,
            outcome=outcome,
            turns=len(self.turns),
            totals=totals(self.turns, failed_attempts),
            ended_at=now_iso(),
            duration_s=round(time.monotonic() - self._started, 3),
            error=error,
        )
        try:
            # Also after a failed turn line: the end line says what went wrong, if it fits.
            self._writer.write(record, after_failure=True)
        finally:
            self._writer.close()
        return record
