"""The preview's first requests are the requests a real run sends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agents.backends.base import ChatRequest
from agents.backends.scripted import ScriptedBackend
from runner.model.pool import BackendPool
from runner.run.orchestrator import run_scenarios
from runner.run.plan import RunPlan
from runner.run.preview import first_requests, placeholder
from runner.scenario.schema import scenario_from_data
from runner.settings import RunSettings
from tests.cli import offline
from tests.fakes.ollama_server import FakeOllama

PANEL: dict[str, Any] = {
    "name": "panel",
    "agents": [
        {"name": "Ann", "model": "m1", "persona": "You are Ann.", "opening": "Hello all."},
        {"name": "Bob", "model": "m2", "persona": "You are Bob.", "options": {"num_ctx": 512}},
        {"name": "Cy", "model": "m1"},
    ],
    "defaults": {"options": {"temperature": 0.5}},
    "order": "random",
    "history": 2,
    "kickoff": "Go on, {who}.",
    "vars": {"who": "panel"},
    "seed": 11,
}
DUO: dict[str, Any] = {
    "name": "duo",
    "agents": [
        {"name": "A", "model": "m1", "persona": "Be brief.", "opening": "Cats or dogs?"},
        {"name": "B", "model": "m2"},
    ],
    "seed": 5,
}


def firsts_of_a_real_run(requests: list[ChatRequest]) -> dict[str, ChatRequest]:
    seen: dict[str, ChatRequest] = {}
    for request in requests:
        seen.setdefault((request.session or "").split("/", 1)[1], request)
    return seen


@pytest.mark.parametrize("data", [PANEL, DUO, {**PANEL, "order": "simultaneous"}])
async def test_first_requests_are_what_a_real_run_sends(
    data: dict[str, Any], tmp_path: Path
) -> None:
    scenario = scenario_from_data(data)
    engine = ScriptedBackend(models=["m1", "m2"])
    engine.supported_options = frozenset({"temperature", "seed"})
    run = RunPlan([scenario])
    await run.bind(BackendPool.fixed(engine))
    _, previewed = await first_requests(run.parts[0], RunSettings(out_dir=tmp_path / "p"))
    assert engine.requests == []  # nothing reached the engine
    assert not list((tmp_path / "p").glob("*"))  # and nothing was written

    real = ScriptedBackend(models=["m1", "m2"])
    settings = RunSettings(out_dir=tmp_path / "real")
    [result] = await run_scenarios([scenario], settings, pool=BackendPool.fixed(real))
    said: dict[str, list[str]] = {}
    for line in result.path.read_text(encoding="utf-8").splitlines()[1:-1]:
        turn = json.loads(line)
        if not turn["scripted"]:
            said.setdefault(turn["speaker"], []).append(turn["content"])
    sent = firsts_of_a_real_run(real.requests)
    assert [f.agent for f in previewed] == list(sent)  # same agents, in the order they speak
    for first in previewed:
        expected = sent[first.agent]
        messages = [dict(m) for m in first.request.messages]
        for message in messages:  # placeholders stand for replies not generated yet
            for agent, replies in said.items():
                for n, text in enumerate(replies, 1):
                    message["content"] = message["content"].replace(placeholder(agent, n), text)
        assert messages == [dict(m) for m in expected.messages]
        assert first.request.config == expected.config  # same per-turn seed and options
        assert first.backend is engine


async def test_a_preview_logs_no_conversation_start_or_finish(tmp_path: Path) -> None:
    scenario = scenario_from_data(DUO)
    engine = ScriptedBackend(models=["m1", "m2"])
    run = RunPlan([scenario])
    await run.bind(BackendPool.fixed(engine))
    events = {"conversation started", "conversation finished"}
    with capture_logs() as previewed:
        await first_requests(run.parts[0], RunSettings(out_dir=tmp_path / "p"))
    with capture_logs() as ran:  # the same events from a real run are logged
        settings = RunSettings(out_dir=tmp_path / "real")
        await run_scenarios([scenario], settings, pool=BackendPool.fixed(engine))
    assert [e["event"] for e in previewed if e["event"] in events] == []
    assert [e["event"] for e in ran if e["event"] in events] == sorted(events, reverse=True)


def test_show_prompts_prints_them_and_sends_nothing(tmp_path: Path) -> None:
    with FakeOllama.in_thread(models=["qwen:0.5b", "llama3.2:1b"]) as fake:
        result = offline(
            "run", "scenarios/i-lost.yaml", "--show-prompts", "--host", fake.url,
            "--out", tmp_path,
        )  # fmt: skip
        chats = [r for r in fake.requests if "messages" in r]
    assert result.returncode == 0, result.stderr
    assert chats == [] and not list(tmp_path.glob("*.jsonl"))
    out = result.stdout
    assert "i-lost  first requests of conversation #0, seed " in out
    assert "(base seed 20241124)" in out
    assert f"── qwen, turn 1 → ollama at {fake.url}, model qwen:0.5b" in out
    assert f"── llama, turn 2 → ollama at {fake.url}, model llama3.2:1b" in out
    assert "[system]\n  You are playing an argument game." in out
    assert "[user]\n  <qwen's reply 1>" in out
    assert "nothing was sent to a model" in out


def test_show_prompts_of_missing_models_prints_them_then_fails(tmp_path: Path) -> None:
    with FakeOllama.in_thread(models=["qwen:0.5b"]) as fake:
        result = offline(
            "run", "scenarios/i-lost.yaml", "--show-prompts", "--host", fake.url,
            "--out", tmp_path,
        )  # fmt: skip
    assert result.returncode == 2
    assert "── llama, turn 2" in result.stdout
    assert "does not have llama3.2:1b" in result.stderr
