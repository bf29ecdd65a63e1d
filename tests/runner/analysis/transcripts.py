"""Hand-made transcripts for the analysis tests, written through the real writer."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.transcript import (
    AgentInfo,
    EndRecord,
    ErrorInfo,
    Outcome,
    RunRecord,
    Totals,
    TranscriptWriter,
    TurnRecord,
    slug,
)

_ids = itertools.count()


@dataclass
class Agent:
    name: str
    model: str
    persona: str = "You argue."
    opening: str | None = None


@dataclass
class Conversation:
    """A conversation to write: ``turns`` are (speaker, content); a speaker's opening, when
    it has one and speaks first, is written as a scripted first turn."""

    agents: Sequence[Agent]
    turns: Sequence[tuple[str, str]]
    scenario: str = "test"
    status: str = "success"
    winner: str | None = None
    loser: str | None = None
    reason: str = "max_turns"
    rule: str | None = None
    decided_at: int | None = None  # index of the deciding turn (for end_rule)
    repeat_index: int = 0
    seed: int = 1
    kickoff: str | None = "Please begin."
    timing: dict[str, Any] = field(default_factory=dict)
    cid: str | None = None
    game_id: str | None = None  # a tournament game


def write_conversation(folder: Path, c: Conversation) -> Path:
    cid = c.cid or f"c{next(_ids):05d}"
    run = RunRecord(
        run_id="run",
        conversation_id=cid,
        scenario=c.scenario,
        scenario_hash="sha256:test",
        repeat_index=c.repeat_index,
        repeat=max(c.repeat_index + 1, 1),
        seed=c.seed,
        order="round_robin",
        max_turns=len(c.turns) + 1,
        kickoff=c.kickoff,
        agents=[
            AgentInfo(name=a.name, model=a.model, persona=a.persona, opening=a.opening)
            for a in c.agents
        ],
        backend="scripted",
        sparring_version="0",
        started_at=f"2026-01-01T00:00:{c.repeat_index:02d}Z",
        game_id=c.game_id,
    )
    writer = TranscriptWriter.create(folder, f"{slug(c.scenario)}_{cid}")
    writer.write(run)
    models = {a.name: a.model for a in c.agents}
    openings = {a.name: a.opening for a in c.agents}
    for index, (speaker, content) in enumerate(c.turns):
        scripted = index == 0 and openings.get(speaker) == content
        words = len(content.split())
        writer.write(
            TurnRecord(
                conversation_id=cid,
                index=index,
                round=index // len(c.agents) + 1,
                speaker=speaker,
                model=models[speaker],
                content=content,
                started_at="t",
                ended_at="t",
                scripted=scripted,
                attempts=0 if scripted else 1,
                ttft_ms=None if scripted else c.timing.get("ttft_ms", 100.0),
                latency_ms=None if scripted else c.timing.get("latency_ms", 1000.0),
                completion_tokens=None if scripted else words,
            )
        )
    if c.status != "incomplete":
        writer.write(
            EndRecord(
                conversation_id=cid,
                status=c.status,  # type: ignore[arg-type]
                turns=len(c.turns),
                ended_at="t",
                totals=Totals(turns=len(c.turns)),
                outcome=Outcome(
                    winner=c.winner,
                    loser=c.loser,
                    reason=c.reason,
                    rule=c.rule,
                    turn=c.decided_at if c.decided_at is not None else len(c.turns) - 1,
                ),
                error=ErrorInfo(type="X", kind="timeout", message="timed out")
                if c.status == "error"
                else None,
            )
        )
    writer.close()
    return writer.path


Write = Callable[..., Path]
