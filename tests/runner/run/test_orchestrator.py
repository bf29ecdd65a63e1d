"""The orchestrator against the scripted backend: order, views, rules, limits, seeds, errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agents.backends.base import ChatRequest
from agents.backends.scripted import ScriptedBackend
from agents.errors import BadRequest, ConfigError, ServerError
from runner.model.generate import RetryPolicy
from runner.model.pool import BackendPool
from runner.play.events import Observer, TurnFinished
from runner.play.seeds import derive_seed
from runner.run.orchestrator import run_scenarios
from runner.scenario.schema import ResolvedScenario, scenario_from_data
from runner.settings import RunSettings
from runner.transcript import read_transcript

FAST = RetryPolicy(attempts=3, base=0.001)
MODELS = ["ma", "mb", "m", "bad"]


def unseeded_data() -> dict[str, Any]:
    return {k: v for k, v in base_data().items() if k != "seed"}


def base_data() -> dict[str, Any]:
    return {
        "name": "t",
        "agents": [
            {"name": "A", "model": "ma", "persona": "You are A."},
            {"name": "B", "model": "mb", "persona": "You are B."},
        ],
        "max_turns": 6,
        "seed": 1,
    }


def scenario(**fields: Any) -> ResolvedScenario:
    data = base_data()
    data.update(fields)
    return scenario_from_data(data)


def echo(request: ChatRequest) -> str:
    """Reply with the speaker's model and how many messages it was sent."""
    return f"{request.model} saw {len(request.messages)}"


async def run(
    tmp_path: Path,
    *scenarios: ResolvedScenario,
    backend: ScriptedBackend | None = None,
    concurrency: int | None = None,
) -> tuple[list[Any], ScriptedBackend]:
    backend = backend or ScriptedBackend(fallback=echo, models=MODELS)
    settings = RunSettings(out_dir=tmp_path, retry=FAST, concurrency=concurrency)
    results = await run_scenarios(
        list(scenarios), settings, pool=BackendPool.fixed(backend, settings)
    )
    return results, backend


def speakers(path: Path) -> list[str]:
    return [t.speaker for t in read_transcript(path).turns]


async def test_round_robin_in_list_order_until_max_turns(tmp_path: Path) -> None:
    [result], backend = await run(tmp_path, scenario())
    assert speakers(result.path) == ["A", "B", "A", "B", "A", "B"]
    assert result.status == "success" and result.outcome.reason == "max_turns"
    assert len(backend.requests) == 6
    transcript = read_transcript(result.path)
    assert [t.round for t in transcript.turns] == [1, 1, 2, 2, 3, 3]
    assert [t.index for t in transcript.turns] == list(range(6))


async def test_each_agent_is_sent_its_own_view_with_full_history(tmp_path: Path) -> None:
    [result], backend = await run(tmp_path, scenario())
    last_b = [r for r in backend.requests if r.model == "mb"][-1]
    assert [m["role"] for m in last_b.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert last_b.messages[0]["content"] == "You are B."
    turns = read_transcript(result.path).turns
    assert [m["content"] for m in last_b.messages[1:]] == [t.content for t in turns[:5]]


async def test_requests_extend_their_sides_last_unless_a_history_window_cuts_them(
    tmp_path: Path,
) -> None:
    # Requests that extend their side's last one let an engine keep the side's context; a
    # history window drops the oldest turns, so its requests promise nothing.
    [result], backend = await run(tmp_path, scenario())
    cid = read_transcript(result.path).run.conversation_id
    assert [r.session for r in backend.requests[:2]] == [f"{cid}/A", f"{cid}/B"]
    assert all(r.extends for r in backend.requests)
    _, windowed = await run(tmp_path, scenario(history=2))
    assert not any(r.extends for r in windowed.requests)


async def test_random_order_is_seeded(tmp_path: Path) -> None:
    orders = []
    for seed in (1, 1, 2, 3, 4):
        agents = [{"name": n, "model": "m"} for n in "ABCD"]
        [result], _ = await run(
            tmp_path, scenario(order="random", agents=agents, max_turns=12, seed=seed)
        )
        orders.append(speakers(result.path))
    assert orders[0] == orders[1]
    assert len({tuple(o) for o in orders}) > 2
    for order in orders:  # every agent speaks once per round
        assert all(sorted(order[i : i + 4]) == list("ABCD") for i in range(0, 12, 4))


async def test_simultaneous_rounds_run_concurrently_and_see_the_previous_round(
    tmp_path: Path,
) -> None:
    agents = [{"name": n, "model": "m", "persona": f"You are {n}."} for n in "ABC"]
    backend = ScriptedBackend(fallback=echo, delay=0.05, models=MODELS)
    [result], backend = await run(
        tmp_path,
        scenario(order="simultaneous", agents=agents, max_turns=6),
        backend=backend,
        concurrency=3,
    )
    assert backend.max_in_flight == 3
    transcript = read_transcript(result.path)
    assert [(t.round, t.speaker) for t in transcript.turns] == [
        (1, "A"),
        (1, "B"),
        (1, "C"),
        (2, "A"),
        (2, "B"),
        (2, "C"),
    ]
    # Round 2: each agent sees round 1 only: its own answer plus the two others, labelled.
    round2 = backend.requests[3:]
    for request in round2:
        assert len(request.messages) == 4  # system, kickoff, own round-1 turn, others merged
        others = request.messages[3]["content"]
        assert others.count(": m saw") == 2


async def test_concurrency_limit_bounds_requests_in_flight(tmp_path: Path) -> None:
    backend = ScriptedBackend(fallback=echo, delay=0.02, models=MODELS)
    many = scenario(repeat=6)
    results, backend = await run(tmp_path, many, backend=backend, concurrency=2)
    assert len(results) == 6 and all(r.status == "success" for r in results)
    assert backend.max_in_flight == 2


async def test_end_rule_stops_and_names_the_winner(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        {"mb": ["No.", "Never.", "Alright, I lost."]}, fallback=echo, models=MODELS
    )
    s = scenario(max_turns=20, end=[{"phrase": "I lost", "outcome": "speaker_loses"}])
    [result], _ = await run(tmp_path, s, backend=backend)
    transcript = read_transcript(result.path)
    assert len(transcript.turns) == 6
    assert transcript.end is not None
    assert transcript.end.outcome.winner == "A" and transcript.end.outcome.loser == "B"
    assert transcript.end.outcome.turn == 5 and transcript.end.outcome.reason == "end_rule"


async def test_scripted_opening_never_fires_a_rule(tmp_path: Path) -> None:
    agents = [
        {"name": "A", "model": "ma", "opening": "Say 'I lost' and you lose. I lost once!"},
        {"name": "B", "model": "mb"},
    ]
    s = scenario(agents=agents, max_turns=3, end=[{"phrase": "I lost", "outcome": "speaker_loses"}])
    [result], backend = await run(tmp_path, s)
    transcript = read_transcript(result.path)
    assert transcript.turns[0].scripted and transcript.turns[0].attempts == 0
    assert transcript.turns[0].content == "Say 'I lost' and you lose. I lost once!"
    assert result.outcome.reason == "max_turns"
    assert [r.model for r in backend.requests] == ["mb", "ma"]  # the opening cost no request


async def test_agent_turn_limits(tmp_path: Path) -> None:
    agents = [
        {"name": "A", "model": "ma", "max_turns": 1},
        {"name": "B", "model": "mb", "max_turns": 3},
    ]
    [result], _ = await run(tmp_path, scenario(agents=agents, max_turns=50))
    assert speakers(result.path) == ["A", "B", "B", "B"]
    assert result.outcome.reason == "agent_turn_limits"


async def test_repeats_get_distinct_recorded_reproducible_seeds(tmp_path: Path) -> None:
    results, _ = await run(tmp_path, scenario(repeat=3, seed=42))
    seeds = [read_transcript(r.path).run.seed for r in results]
    assert seeds == [derive_seed(42, i) for i in range(3)]
    assert len(set(seeds)) == 3
    again, _ = await run(tmp_path / "again", scenario(repeat=3, seed=42))
    assert [read_transcript(r.path).run.seed for r in again] == seeds


async def test_agent_seeds_derive_from_the_run_seed_unless_set(tmp_path: Path) -> None:
    agents = [{"name": "A", "model": "ma"}, {"name": "B", "model": "mb", "options": {"seed": 7}}]
    [result], backend = await run(tmp_path, scenario(agents=agents, max_turns=2))
    run_record = read_transcript(result.path).run
    assert run_record.agents[1].options["seed"] == 7
    assert run_record.agents[0].options["seed"] == derive_seed(run_record.seed, "A")
    turns = read_transcript(result.path).turns
    # Each request's seed comes from the agent's seed and its turn number, and is recorded.
    for request, turn in zip(backend.requests, turns, strict=True):
        agent = next(a for a in run_record.agents if a.name == turn.speaker)
        assert request.config.seed == turn.seed == derive_seed(agent.options["seed"], 0)


async def test_an_agent_gets_a_new_seed_every_turn(tmp_path: Path) -> None:
    [result], backend = await run(tmp_path, scenario(max_turns=6))
    seeds_a = [r.config.seed for r in backend.requests if r.model == "ma"]
    assert len(seeds_a) == 3 and len(set(seeds_a)) == 3
    [again], _ = await run(tmp_path / "again", scenario(max_turns=6))
    assert [t.seed for t in read_transcript(again.path).turns] == [
        t.seed for t in read_transcript(result.path).turns
    ]


async def test_retryable_errors_are_retried_and_counted(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        {"mb": [ServerError("busy", status=503), ServerError("busy", status=503), "ok"]},
        fallback=echo,
        models=MODELS,
    )
    [result], _ = await run(tmp_path, scenario(max_turns=2), backend=backend)
    turns = read_transcript(result.path).turns
    assert [t.attempts for t in turns] == [1, 3]
    assert turns[1].content == "ok" and result.status == "success"


async def test_final_error_ends_only_its_own_conversation(tmp_path: Path) -> None:
    broken = scenario(
        name="broken", agents=[{"name": "A", "model": "bad"}, {"name": "B", "model": "mb"}]
    )
    backend = ScriptedBackend(
        {"bad": [BadRequest("nope", status=400)]}, fallback=echo, models=MODELS
    )
    results, _ = await run(tmp_path, broken, scenario(name="fine"), backend=backend)
    by_name = {r.scenario: r for r in results}
    assert by_name["fine"].status == "success" and by_name["fine"].turns == 6
    bad = read_transcript(by_name["broken"].path)
    assert bad.end is not None and bad.end.status == "error"
    assert bad.end.error is not None and bad.end.error.kind == "bad_request"
    assert bad.end.error.retryable is False


async def test_retries_run_out(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        {"ma": [ServerError("down", status=500)] * 3}, fallback=echo, models=MODELS
    )
    [result], _ = await run(tmp_path, scenario(), backend=backend)
    assert result.status == "error" and result.error is not None
    assert result.error.attempts == 3


class TurnsSeen(Observer):
    """Sets ``ready`` once ``conversations`` different conversations have finished a turn."""

    def __init__(self, conversations: int) -> None:
        self.needed = conversations
        self.seen: set[str | None] = set()
        self.ready = asyncio.Event()

    def turn_finished(self, event: TurnFinished) -> None:
        self.seen.add(event.record.conversation_id)
        if len(self.seen) >= self.needed:
            self.ready.set()


async def test_cancellation_closes_every_transcript(tmp_path: Path) -> None:
    backend = ScriptedBackend(fallback=echo, delay=0.05, models=MODELS)
    settings = RunSettings(out_dir=tmp_path, retry=FAST, concurrency=4)
    seen = TurnsSeen(3)
    task = asyncio.create_task(
        run_scenarios(
            [scenario(repeat=3, max_turns=100)],
            settings,
            pool=BackendPool.fixed(backend, settings),
            observer=seen,
        )
    )
    await asyncio.wait_for(seen.ready.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) == 3
    for path in files:
        transcript = read_transcript(path)
        assert transcript.end is not None and transcript.end.status == "cancelled"
        assert len(transcript.turns) >= 1


async def test_preflight_names_missing_models_before_any_chat(tmp_path: Path) -> None:
    backend = ScriptedBackend(fallback=echo, models=["ma"])
    with pytest.raises(ConfigError) as info:
        await run(tmp_path, scenario(), backend=backend)
    assert "does not have mb" in str(info.value)
    assert backend.requests == []
    assert list(tmp_path.glob("*.jsonl")) == []


async def test_transcript_records_every_field(tmp_path: Path) -> None:
    [result], _ = await run(tmp_path, scenario(max_turns=2))
    transcript = read_transcript(result.path)
    run_record = transcript.run
    assert run_record.schema_version == 1 and run_record.scenario == "t"
    assert run_record.scenario_hash.startswith("sha256:") and run_record.backend == "scripted"
    assert run_record.agents[0].model_digest is not None
    turn = transcript.turns[1]
    assert turn.prompt_tokens and turn.completion_tokens and turn.done_reason == "stop"
    assert (
        turn.ttft_ms is not None and turn.latency_ms is not None and turn.latency_ms >= turn.ttft_ms
    )
    assert turn.started_at <= turn.ended_at
    assert transcript.end is not None
    assert transcript.end.totals.completion_tokens == sum(
        t.completion_tokens or 0 for t in transcript.turns
    )


async def test_retry_logs_carry_the_conversation_ids(tmp_path: Path) -> None:
    from structlog.contextvars import merge_contextvars
    from structlog.testing import capture_logs

    backend = ScriptedBackend(
        {"mb": [ServerError("busy", status=503), "ok"]}, fallback=echo, models=MODELS
    )
    with capture_logs(processors=[merge_contextvars]) as logs:
        [result], _ = await run(tmp_path, scenario(max_turns=2), backend=backend)
    [retry] = [entry for entry in logs if entry["event"] == "retrying"]
    run_record = read_transcript(result.path).run
    assert retry["conversation"] == run_record.conversation_id
    assert retry["run_id"] == run_record.run_id


async def test_a_run_without_a_seed_can_be_replayed_from_its_record(tmp_path: Path) -> None:
    unseeded = scenario(seed=None, repeat=2)
    first, _ = await run(tmp_path / "a", unseeded)
    record = read_transcript(first[1].path).run
    assert record.base_seed is not None
    assert record.seed == derive_seed(record.base_seed, 1)
    replay = scenario_from_data({**unseeded_data(), "seed": record.base_seed, "repeat": 2})
    again, _ = await run(tmp_path / "b", replay)
    assert read_transcript(again[1].path).run.seed == record.seed
