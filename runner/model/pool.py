"""The engines a run talks to, and the models bound to them.

One backend instance per (engine, hosts, API key), shared by every conversation of a run,
and one :class:`~runner.model.handle.Model` per model on it; requests on one connection
key (a server, or a loaded embedded model) share one semaphore.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from agents.agent import Agent
from agents.backends import Choice, choose_backend, create_backend
from agents.backends.base import Backend, BackendSettings
from runner.model.handle import Model
from runner.scenario.schema import ResolvedScenario
from runner.settings import RunSettings

log = structlog.get_logger("sparring.pool")

EngineKey = tuple[str, tuple[str, ...], str | None]  # requested engine, hosts, API key variable


class BackendPool:
    """Owns the backends' lifetime (``async with BackendPool(...)``: leaving it closes every
    backend, which frees connections, threads and loaded models) and the concurrency
    limits: one semaphore per connection key.
    """

    def __init__(
        self,
        settings: RunSettings,
        *,
        factory: Callable[[str, BackendSettings], Backend] = create_backend,
    ) -> None:
        self.settings = settings
        self._factory = factory
        self._engines: dict[EngineKey, tuple[Backend, Choice]] = {}
        self._models: dict[tuple[EngineKey, str], Model] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}

    @classmethod
    def fixed(cls, backend: Backend, settings: RunSettings | None = None) -> BackendPool:
        """A pool that always answers with ``backend`` (tests, benchmarks, embedding)."""
        pool = cls(settings or RunSettings())
        pool._engines[FIXED] = (backend, Choice(backend.name, "given"))
        return pool

    async def bind(
        self, scenario: ResolvedScenario, agent: Agent, hosts: tuple[str, ...] | None = None
    ) -> Model:
        """``agent``'s model on its engine: on ``hosts`` when given (a tournament's host),
        else on --host, the agent's host or the scenario's hosts, in that order."""
        key = FIXED if FIXED in self._engines else await self._engine(scenario, agent, hosts)
        if (key, agent.model) not in self._models:
            backend, choice = self._engines[key]
            self._models[(key, agent.model)] = Model(
                agent.model,
                backend,
                choice,
                self.limit(backend, agent.model),
                self.settings.timeouts,
                self.settings.retry,
            )
        return self._models[(key, agent.model)]

    async def _engine(
        self, scenario: ResolvedScenario, agent: Agent, hosts: tuple[str, ...] | None
    ) -> EngineKey:
        requested = self.settings.backend or scenario.backend or "auto"
        if hosts is None:
            hosts = self.settings.hosts or ((agent.host,) if agent.host else tuple(scenario.hosts))
        api_key_env = self.settings.api_key_env or scenario.api_key_env
        key = (requested, tuple(hosts), api_key_env)
        if key not in self._engines:
            backend_settings = BackendSettings(
                hosts=tuple(hosts), timeouts=self.settings.timeouts, api_key_env=api_key_env
            )
            set_by = "--backend" if self.settings.backend else scenario.backend_set_by
            choice = await choose_backend(requested, backend_settings, set_by=set_by)
            backend = self._factory(choice.name, backend_settings)
            log.info("backend", backend=choice.name, host=backend.host, reason=choice.reason)
            self._engines[key] = (backend, choice)
        return key

    def slots(self, backend: Backend) -> int:
        """Requests in flight per connection key: --concurrency, else the backend's default."""
        return max(1, self.settings.concurrency or backend.default_concurrency())

    def capacity(self, model: Model) -> int:
        """Conversations worth keeping alive on ``model``'s connection key."""
        return self.slots(model.backend) * model.backend.conversations_per_slot

    def limit(self, backend: Backend, model: str) -> asyncio.Semaphore:
        key = backend.connection_key(model)
        if key not in self._limits:
            self._limits[key] = asyncio.Semaphore(self.slots(backend))
        return self._limits[key]

    def backends(self) -> list[Backend]:
        return [backend for backend, _ in self._engines.values()]

    async def __aenter__(self) -> BackendPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        backends = self.backends()
        self._engines.clear()
        self._models.clear()
        for backend in backends:
            try:
                await backend.aclose()
            except Exception:  # closing must not hide the run's own outcome
                log.warning("backend close failed", backend=backend.name, exc_info=True)


FIXED: EngineKey = ("", (), None)  # the key of a fixed pool's one engine
