"""The bounded scheduler: live conversations, slots freed while backing off, faults that
change nothing seeded, and errors reported for what they are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agents.backends.base import ChatEvent, ChatRequest
from agents.backends.scripted import ScriptedBackend
from agents.errors import ServerError, StreamError
from runner.model.generate import RetryPolicy
from runner.model.pool import BackendPool
from runner.play.events import ConversationFinished, ConversationStarted, Observer
from runner.run import orchestrator
from runner.run.orchestrator import (
    default_max_conversations,
    iter_conversations,
    prepare,
    run_scenarios,
)
from runner.run.plan import RunPlan
from runner.scenario.schema import ResolvedScenario, scenario_from_data
from runner.settings import RunSettings
from runner.transcript import read_transcript

FAST = RetryPolicy(attempts=4, base=0.001)


def scenario(**fields: Any) -> ResolvedScenario:
    data: dict[str, Any] = {
        "name": "t",
        "agents": [{"name": "A", "model": "ma"}, {"name": "B", "model": "mb"}],
        "max_turns": 4,
        "seed": 5,
    }
    data.update(fields)
    return scenario_from_data(data)


class Alive(Observer):
    """Counts conversations between their start and their end."""

    def __init__(self) -> None:
        self.alive = 0
        self.most = 0
        self.finished: list[str] = []
        self.done = asyncio.Event()
        self.watch: str | None = None

    def conversation_started(self, event: ConversationStarted) -> None:
        self.alive += 1
        self.most = max(self.most, self.alive)

    def conversation_finished(self, event: ConversationFinished) -> None:
        self.alive -= 1
        self.finished.append(event.run.scenario)
        if event.run.scenario == self.watch:
            self.done.set()


async def test_at_most_max_conversations_are_alive_and_results_stream(tmp_path: Path) -> None:
    backend = ScriptedBackend(models=["ma", "mb"], concurrency=8, delay=0.001)
    settings = RunSettings(out_dir=tmp_path, retry=FAST)
    pool = BackendPool.fixed(backend, settings)
    ready = await prepare([scenario(repeat=40)], pool)
    alive = Alive()
    seen = 0
    async for result in iter_conversations(
        ready.run, settings, max_conversations=3, observer=alive
    ):
        seen += 1
        assert result.status == "success"
        # Transcripts are opened when their conversation starts, never all at once.
        assert len(list(tmp_path.glob("*.jsonl"))) <= seen + 3
    assert seen == 40 and alive.most == 3


async def test_the_default_keeps_every_slot_busy(tmp_path: Path) -> None:
    settings = RunSettings(out_dir=tmp_path)
    backend = ScriptedBackend(models=["ma", "mb"], concurrency=3)
    pool = BackendPool.fixed(backend, settings)
    run = RunPlan([scenario(repeat=100)])
    await run.bind(pool)
    assert default_max_conversations(run, pool) == 3 * 2  # two conversations per slot
    backend.conversations_per_slot = 1  # an embedded engine
    assert default_max_conversations(run, pool) == 3


async def test_a_low_open_file_limit_bounds_the_conversations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orchestrator.resource, "getrlimit", lambda _: (70, 70))
    backend = ScriptedBackend(models=["ma", "mb"])
    with capture_logs() as logs:
        ready = await prepare(
            [scenario(repeat=500)], BackendPool.fixed(backend), max_conversations=400
        )
    assert ready.max_conversations == 70 - orchestrator.RESERVED_FILES
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "fewer conversations at once: the open-file limit is low"
    ]


class Flaky(ScriptedBackend):
    """Fails model ``ma``'s first request; everything else answers at once."""

    def __init__(self) -> None:
        super().__init__(models=["ma", "mb", "mc"], concurrency=1)
        self.failed = False

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        if request.model == "ma" and not self.failed:
            self.failed = True
            raise ServerError("busy", status=503)
        async for event in super().chat(request):
            yield event


class Patient(RetryPolicy):
    def delay(self, retry: int, rng: Any = None) -> float:
        return 60.0  # far longer than the other conversation needs


async def test_a_conversation_backing_off_leaves_the_slot_to_others(tmp_path: Path) -> None:
    backend = Flaky()
    settings = RunSettings(out_dir=tmp_path, retry=Patient(attempts=3), concurrency=1)
    waiting = scenario(
        name="waiting", agents=[{"name": "A", "model": "ma"}, {"name": "B", "model": "mb"}]
    )
    other = scenario(
        name="other", agents=[{"name": "C", "model": "mc"}, {"name": "D", "model": "mb"}]
    )
    alive = Alive()
    alive.watch = "other"
    task = asyncio.create_task(
        run_scenarios(
            [waiting, other], settings, pool=BackendPool.fixed(backend, settings), observer=alive
        )
    )
    # With one request slot, "other" can only finish if "waiting" gave the slot back while
    # it waits its 60 seconds to retry.
    await asyncio.wait_for(alive.done.wait(), 10)
    assert alive.finished == ["other"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_faults_change_neither_speaking_order_nor_seeds(tmp_path: Path) -> None:
    agents = [{"name": n, "model": "m"} for n in "ABCD"]
    shuffled = scenario(order="random", agents=agents, max_turns=12, seed=99)

    async def play(out: Path, faults: list[Any]) -> list[tuple[str, int | None, str]]:
        backend = ScriptedBackend(
            {"m": faults}, models=["m"], fallback=lambda r: f"s{r.config.seed}"
        )
        settings = RunSettings(out_dir=out, retry=FAST)
        [result] = await run_scenarios(
            [shuffled], settings, pool=BackendPool.fixed(backend, settings)
        )
        transcript = read_transcript(result.path)
        return [(t.speaker, t.seed, t.content) for t in transcript.turns]

    clean = await play(tmp_path / "clean", [])
    faulty = await play(
        tmp_path / "faulty",
        [ServerError("busy", status=503), StreamError("dropped"), ServerError("busy", status=503)],
    )
    assert faulty == clean
    assert len({speaker for speaker, _, _ in clean[:4]}) == 4  # it really is shuffled per round


async def test_faults_are_recorded_per_attempt(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        {"mb": [ServerError("busy", status=503), StreamError("dropped"), "ok"]},
        models=["ma", "mb"],
    )
    settings = RunSettings(out_dir=tmp_path, retry=FAST)
    [result] = await run_scenarios(
        [scenario(max_turns=2)], settings, pool=BackendPool.fixed(backend, settings)
    )
    turn = read_transcript(result.path).turns[1]
    assert turn.attempts == 3
    assert [(e.kind, e.message) for e in turn.attempt_errors] == [
        ("server_error", "busy"),
        ("stream_error", "dropped"),
    ]


async def test_retries_of_a_failed_turn_are_counted(tmp_path: Path) -> None:
    backend = ScriptedBackend({"mb": [ServerError("down", status=500)] * 4}, models=["ma", "mb"])
    settings = RunSettings(out_dir=tmp_path, retry=FAST)
    [result] = await run_scenarios(
        [scenario()], settings, pool=BackendPool.fixed(backend, settings)
    )
    assert result.status == "error" and result.end.totals.retries == 3


async def test_a_bug_is_an_internal_error_with_its_traceback(tmp_path: Path) -> None:
    def broken(request: ChatRequest) -> str:
        return request.no_such_field  # type: ignore[attr-defined,no-any-return]

    backend = ScriptedBackend({"mb": [broken]}, models=["ma", "mb"])
    settings = RunSettings(out_dir=tmp_path, retry=FAST)
    with capture_logs() as logs:
        results = await run_scenarios(
            [
                scenario(),
                scenario(
                    name="fine", agents=[{"name": "A", "model": "ma"}, {"name": "B", "model": "ma"}]
                ),
            ],
            settings,
            pool=BackendPool.fixed(backend, settings),
        )
    bad, fine = results
    assert fine.status == "success"  # the bug ended only its own conversation
    assert bad.status == "error" and bad.error is not None
    assert bad.error.kind == "internal" and bad.error.type == "AttributeError"
    assert bad.error.traceback is not None and "broken" in bad.error.traceback
    assert bad.error.retryable is False
    assert len(backend.requests) >= 2  # not retried as if the server had failed
    assert any(e["event"] == "conversation crashed" and e.get("exc_info") for e in logs)
