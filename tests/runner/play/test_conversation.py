"""One conversation: seats take turns, the referee judges, the recorder writes it down, and
a failure ends this conversation alone, recorded in its own transcript."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agents.backends.base import ChatRequest
from agents.backends.scripted import ScriptedBackend
from agents.errors import BadRequest, ServerError
from runner.model.generate import RetryPolicy
from runner.model.pool import BackendPool
from runner.play.conversation import Conversation, Plan
from runner.play.events import ConversationFinished, ConversationStarted, Observer, TurnFinished
from runner.run.plan import RunPlan
from runner.scenario.schema import scenario_from_data
from runner.settings import RunSettings
from runner.transcript import read_transcript

GAME: dict[str, Any] = {
    "name": "game",
    "agents": [
        {"name": "A", "model": "ma", "opening": "Shall we?"},
        {"name": "B", "model": "mb"},
    ],
    "max_turns": 6,
    "seed": 11,
    "end": [{"name": "concession", "phrase": "I lost", "outcome": "speaker_loses"}],
}


class Seen(Observer):
    def __init__(self) -> None:
        self.events: list[str] = []

    def conversation_started(self, event: ConversationStarted) -> None:
        self.events.append("started")

    def turn_finished(self, event: TurnFinished) -> None:
        self.events.append(f"turn {event.record.index} {event.record.speaker}")

    def conversation_finished(self, event: ConversationFinished) -> None:
        self.events.append(f"finished {event.end.status}")


async def planned(backend: ScriptedBackend, settings: RunSettings, **changes: Any) -> Plan:
    run = RunPlan([scenario_from_data({**GAME, **changes})])
    await run.bind(BackendPool.fixed(backend, settings))
    return next(iter(run))


def settings(tmp_path: Path, attempts: int = 1) -> RunSettings:
    return RunSettings(out_dir=tmp_path, retry=RetryPolicy(attempts=attempts, base=0.001))


async def test_a_conversation_is_played_to_its_end_rule_and_written_down(tmp_path: Path) -> None:
    backend = ScriptedBackend({"mb": ["No.", "Fine, I lost."], "ma": ["Yes."]})
    run = settings(tmp_path)
    seen = Seen()
    result = await Conversation(await planned(backend, run), run, run_id="r", observer=seen).run()
    assert (result.status, result.outcome.loser, result.outcome.winner) == ("success", "B", "A")
    assert result.turns == 4 and result.outcome.rule == "concession"
    assert seen.events == [
        "started", "turn 0 A", "turn 1 B", "turn 2 A", "turn 3 B", "finished success",
    ]  # fmt: skip
    transcript = read_transcript(result.path)
    assert [t.content for t in transcript.turns] == ["Shall we?", "No.", "Yes.", "Fine, I lost."]
    assert transcript.turns[0].scripted and not transcript.turns[1].scripted
    assert transcript.run is not None and transcript.run.run_id == "r"
    assert transcript.run.resolved is not None and transcript.run.resolved["name"] == "game"
    # What the preflight would have found lands in the transcript: none here, none recorded.
    assert [a.model_digest for a in transcript.run.agents] == [None, None]


async def test_the_model_info_on_each_handle_goes_into_the_run_line(tmp_path: Path) -> None:
    from runner.run.plan import preflight

    backend = ScriptedBackend(models=["ma", "mb"])
    run = settings(tmp_path)
    plans = RunPlan([scenario_from_data(GAME)])
    await plans.bind(BackendPool.fixed(backend, run))
    await preflight(plans)
    result = await Conversation(next(iter(plans)), run, run_id="r").run()
    digests = {a.model: a.model_digest for a in result.run.agents}
    assert digests == {m: (await backend.find_model(m)).digest for m in ("ma", "mb")}


async def test_a_final_engine_error_ends_this_conversation_and_is_recorded(
    tmp_path: Path,
) -> None:
    refused = BadRequest("bad temperature", backend="scripted", model="mb")
    backend = ScriptedBackend({"mb": ["No.", refused]})
    run = settings(tmp_path, attempts=3)
    result = await Conversation(await planned(backend, run), run, run_id="r").run()
    assert result.status == "error" and result.error is not None
    assert (result.error.kind, result.error.message) == (refused.kind, "bad temperature")
    assert result.turns == 3  # the turns before the failure are kept
    end = read_transcript(result.path).end
    assert end is not None and end.outcome.reason == "error"


async def test_retried_failures_are_recorded_on_the_turn_that_succeeded(tmp_path: Path) -> None:
    busy = ServerError("server busy", backend="scripted", model="mb", status=503)
    backend = ScriptedBackend({"mb": [busy, "No.", "I lost."]})
    run = settings(tmp_path, attempts=3)
    result = await Conversation(await planned(backend, run), run, run_id="r").run()
    turn = read_transcript(result.path).turns[1]
    assert turn.attempts == 2 and [e.kind for e in turn.attempt_errors] == [busy.kind]


async def test_a_bug_ends_this_conversation_as_an_internal_error_with_its_traceback(
    tmp_path: Path,
) -> None:
    def broken(request: ChatRequest) -> str:
        raise ZeroDivisionError("a bug in a reply")

    backend = ScriptedBackend({"mb": [broken]})
    run = settings(tmp_path)
    result = await Conversation(await planned(backend, run), run, run_id="r").run()
    assert result.status == "error" and result.error is not None
    assert result.error.kind == "internal" and "ZeroDivisionError" in result.error.message
    assert result.error.traceback is not None and "broken" in result.error.traceback


async def test_cancelling_closes_the_transcript_as_cancelled(tmp_path: Path) -> None:
    started = asyncio.Event()

    def waits(request: ChatRequest) -> str:
        started.set()
        return "never said"

    backend = ScriptedBackend({"mb": [waits]}, delay=60)
    run = settings(tmp_path)
    conversation = Conversation(await planned(backend, run), run, run_id="r")
    task = asyncio.create_task(conversation.run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    transcript = read_transcript(conversation.path)
    assert transcript.end is not None and transcript.end.status == "cancelled"
    assert [t.content for t in transcript.turns] == ["Shall we?"]


async def test_the_turn_limit_ends_a_conversation_nobody_concedes(tmp_path: Path) -> None:
    backend = ScriptedBackend(fallback=lambda request: "Never.")
    run = settings(tmp_path)
    result = await Conversation(await planned(backend, run, max_turns=3), run, run_id="r").run()
    assert (result.status, result.outcome.reason, result.turns) == ("success", "max_turns", 3)
