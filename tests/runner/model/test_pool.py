"""The backend pool: which backend serves an agent, the limits per server, and closing."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from agents.backends.base import Backend, BackendSettings, Timeouts
from agents.backends.scripted import ScriptedBackend
from runner.model.generate import RetryPolicy
from runner.model.pool import BackendPool
from runner.scenario.schema import ResolvedScenario, scenario_from_data
from runner.settings import RunSettings


def scenario(**fields: Any) -> ResolvedScenario:
    data: dict[str, Any] = {
        "name": "t",
        "backend": "ollama",  # explicit: no probing for a server
        "agents": [
            {"name": "A", "model": "m"},
            {"name": "B", "model": "m"},
            {"name": "C", "model": "m", "host": "other:1"},
        ],
    }
    data.update(fields)
    return scenario_from_data(data)


class Made:
    """A factory recording the backends the pool asks for."""

    def __init__(self, concurrency: int = 1) -> None:
        self.made: list[tuple[str, BackendSettings, ScriptedBackend]] = []
        self.concurrency = concurrency

    def __call__(self, name: str, settings: BackendSettings) -> Backend:
        host = settings.hosts[0] if settings.hosts else "default"
        backend = ScriptedBackend(models=["m"], host=host, concurrency=self.concurrency)
        self.made.append((name, settings, backend))
        return backend


async def test_agents_on_the_same_server_share_one_backend() -> None:
    made = Made()
    pool = BackendPool(RunSettings(), factory=made)
    s = scenario()
    a, b, c = [await pool.bind(s, agent) for agent in s.agents]
    assert a.backend is b.backend  # one server, one backend instance
    assert c.backend is not a.backend and c.backend.host == "other:1"  # the agent's own host
    assert [name for name, _, _ in made.made] == ["ollama", "ollama"]
    assert a.choice.reason == "backend in the file: ollama"  # the scenario's, not a flag


async def test_command_line_hosts_and_backend_win() -> None:
    made = Made()
    pool = BackendPool(RunSettings(hosts=("cli:9",), backend="openai"), factory=made)
    s = scenario()
    models = [await pool.bind(s, agent) for agent in s.agents]
    assert {m.backend.host for m in models} == {"cli:9"}  # --host overrides agents' hosts
    assert [name for name, _, _ in made.made] == ["openai"]
    assert models[0].choice.reason == "--backend openai"


async def test_one_limit_per_connection_key_sized_by_concurrency() -> None:
    made = Made(concurrency=3)
    pool = BackendPool(RunSettings(), factory=made)
    s = scenario()
    a, b, c = [await pool.bind(s, agent) for agent in s.agents]
    assert a.limit is b.limit  # one server, one model: one connection key
    assert c.limit is not a.limit  # another server, its own slots
    assert a.limit._value == 3  # the backend's default concurrency
    sized = BackendPool(RunSettings(concurrency=5), factory=Made())
    model = await sized.bind(s, s.agents[0])
    assert model.limit._value == 5  # --concurrency wins


async def test_a_bound_model_carries_the_runs_timeouts_and_retries() -> None:
    settings = RunSettings(timeouts=Timeouts(first_token=7.0), retry=RetryPolicy(attempts=2))
    pool = BackendPool(settings, factory=Made(concurrency=3))
    s = scenario()
    a, b, _ = [await pool.bind(s, agent) for agent in s.agents]
    assert a is b  # the same model on the same engine: one handle
    assert a.name == "m" and a.timeouts.first_token == 7.0 and a.retry.attempts == 2
    assert pool.capacity(a) == 3 * a.backend.conversations_per_slot


async def test_leaving_the_pool_closes_every_backend_even_if_one_fails() -> None:
    made = Made()
    async with BackendPool(RunSettings(), factory=made) as pool:
        s = scenario()
        for agent in s.agents:
            await pool.bind(s, agent)
        backends = [backend for _, _, backend in made.made]

        async def broken() -> None:
            raise OSError("socket already gone")

        backends[0].aclose = broken  # type: ignore[method-assign]
        with capture_logs() as logs:
            await pool.aclose()
    assert backends[1].closed
    assert [e["event"] for e in logs] == ["backend close failed"]
    assert pool.backends() == []


async def test_a_fixed_pool_serves_every_agent_with_its_backend() -> None:
    backend = ScriptedBackend(models=["m"])
    pool = BackendPool.fixed(backend)
    s = scenario()
    models = await asyncio.gather(*(pool.bind(s, agent) for agent in s.agents))
    assert {id(m.backend) for m in models} == {id(backend)}
