"""The backend pool: which backend serves an agent, the limits per server, and closing."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from agents.backends.base import Backend, BackendSettings
from agents.backends.scripted import ScriptedBackend
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
    bindings = [await pool.bind(s, agent) for agent in s.agents]
    assert {b.backend.host for b in bindings} == {"cli:9"}  # --host overrides agents' hosts
    assert [name for name, _, _ in made.made] == ["openai"]
    assert bindings[0].choice.reason == "--backend openai"


async def test_one_limit_per_connection_key_sized_by_concurrency() -> None:
    made = Made(concurrency=3)
    pool = BackendPool(RunSettings(), factory=made)
    s = scenario()
    a, _, c = [await pool.bind(s, agent) for agent in s.agents]
    limit = pool.limit(a.backend, "m")
    assert pool.limit(a.backend, "m") is limit
    assert pool.limit(c.backend, "m") is not limit  # another server, its own slots
    assert limit._value == 3  # the backend's default concurrency
    sized = BackendPool(RunSettings(concurrency=5), factory=Made())
    binding = await sized.bind(s, s.agents[0])
    assert sized.limit(binding.backend, "m")._value == 5  # --concurrency wins


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
    bindings = await asyncio.gather(*(pool.bind(s, agent) for agent in s.agents))
    assert {id(b.backend) for b in bindings} == {id(backend)}
