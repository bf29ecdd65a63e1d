"""Planning: seeds, plans, shared models, and the preflight that runs before any chat."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from agents.backends.scripted import ScriptedBackend
from agents.errors import ConfigError
from runner.model.pool import BackendPool
from runner.play.seeds import derive_seed
from runner.run.plan import RunPlan, preflight
from runner.scenario.schema import ResolvedScenario, scenario_from_data


def scenario(**fields: Any) -> ResolvedScenario:
    data: dict[str, Any] = {
        "name": "t",
        "agents": [{"name": "A", "model": "ma"}, {"name": "B", "model": "mb"}],
        "seed": 3,
    }
    data.update(fields)
    return scenario_from_data(data)


def test_derived_seeds_are_stable_distinct_and_in_range() -> None:
    seeds = [derive_seed(7, i) for i in range(1000)]
    assert seeds == [derive_seed(7, i) for i in range(1000)]
    assert len(set(seeds)) == 1000
    assert all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(7, "A") != derive_seed(7, "B") != derive_seed(8, "A")


def test_plans_number_the_repeats_and_derive_their_seeds() -> None:
    run = RunPlan([scenario(repeat=3), scenario(name="u", seed=None)])
    assert len(run) == 4
    plans = list(run)
    assert [p.ordinal for p in plans] == [0, 1, 2, 3]
    assert [(p.scenario.name, p.repeat_index) for p in plans] == [
        ("t", 0),
        ("t", 1),
        ("t", 2),
        ("u", 0),
    ]
    assert [p.seed for p in plans[:3]] == [derive_seed(3, i) for i in range(3)]
    assert {p.base_seed for p in plans[:3]} == {3}
    unseeded = plans[3]
    # A base is drawn and kept, so the run can be replayed with --seed BASE.
    assert unseeded.seed == derive_seed(unseeded.base_seed, 0)


async def test_plans_are_made_one_at_a_time_and_share_one_models_table() -> None:
    backend = ScriptedBackend(models=["ma", "mb"])
    run = RunPlan([scenario(repeat=100_000)])
    await run.bind(BackendPool.fixed(backend))
    plans = iter(run)
    first, second = next(plans), next(plans)  # nothing else is made until asked for
    assert first.models is second.models
    assert set(first.models) == {"A", "B"}
    assert len(run) == 100_000


async def test_preflight_gives_each_model_what_the_backend_knows_of_it() -> None:
    backend = ScriptedBackend(models=["ma", "mb"])
    plans = RunPlan([scenario()])
    await plans.bind(BackendPool.fixed(backend))
    assert all(model.info is None for model in plans.models())
    await preflight(plans)
    infos = {model.name: model.info for model in plans.models()}
    assert set(infos) == {"ma", "mb"}
    assert infos["ma"] is not None
    assert infos["ma"].digest == (await backend.find_model("ma")).digest


async def test_preflight_names_every_missing_model_with_its_hint() -> None:
    backend = ScriptedBackend(models=["ma"], host="box")
    plans = RunPlan([scenario(agents=[{"name": "A", "model": "x"}, {"name": "B", "model": "y"}])])
    await plans.bind(BackendPool.fixed(backend))
    with pytest.raises(ConfigError) as info:
        await preflight(plans)
    assert info.value.problems == [
        "<scenario>: scripted at box does not have x, y",
        "  x, y: model not found; pull it",
        "  engine: given",
        "  it has: ma",
        "  to play anyway: --model ma (every agent)",
    ]
    assert backend.requests == []


async def test_preflight_pulls_only_where_asked_and_possible() -> None:
    backend = ScriptedBackend(models=["ma"])
    plans = RunPlan([scenario()])
    await plans.bind(BackendPool.fixed(backend))
    progress: list[tuple[str, str]] = []
    await preflight(plans, pull=True, progress=lambda m, s, *_: progress.append((m, s)))
    assert {m.name: m.info is not None for m in plans.models()} == {"ma": True, "mb": True}
    assert progress == [("mb", "pulling"), ("mb", "success")]

    cannot = ScriptedBackend(models=["ma"])
    cannot.can_pull = False
    plans = RunPlan([scenario()])
    await plans.bind(BackendPool.fixed(cannot))
    with pytest.raises(ConfigError, match="does not have mb"):
        await preflight(plans, pull=True)


async def test_options_an_engine_cannot_send_are_warned_once_per_run() -> None:
    backend = ScriptedBackend(models=["ma", "mb"])
    backend.supported_options = frozenset({"temperature", "seed"})
    plans = RunPlan([scenario(repeat=5, defaults={"options": {"num_ctx": 512, "top_k": 3}})])
    await plans.bind(BackendPool.fixed(backend))
    with capture_logs() as logs:
        await preflight(plans)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["options"] == ["num_ctx", "top_k"] and warnings[0]["backend"] == "scripted"
