"""Backend instances shared by a run's conversations, and their concurrency limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from agents.agent import Agent
from agents.backends import Choice, choose_backend, create_backend
from agents.backends.base import Backend, BackendSettings
from runner.scenario.schema import ResolvedScenario
from runner.settings import RunSettings

log = structlog.get_logger("sparring.pool")


@dataclass(slots=True)
class Binding:
    """A backend instance and why it was chosen."""

    backend: Backend
    choice: Choice


class BackendPool:
    """One backend instance per (engine, hosts), shared by every conversation of a run.

    Owns the backends' lifetime (``async with BackendPool(...)``: leaving it closes every
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
        self._bindings: dict[tuple[str, tuple[str, ...], str | None], Binding] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._fixed: Binding | None = None

    @classmethod
    def fixed(cls, backend: Backend, settings: RunSettings | None = None) -> BackendPool:
        """A pool that always answers with ``backend`` (tests, benchmarks, embedding)."""
        pool = cls(settings or RunSettings())
        pool._fixed = Binding(backend, Choice(backend.name, "given"))
        return pool

    async def bind(
        self, scenario: ResolvedScenario, agent: Agent, hosts: tuple[str, ...] | None = None
    ) -> Binding:
        """The backend for ``agent``: on ``hosts`` when given (a tournament's host), else on
        --host, the agent's host or the scenario's hosts, in that order."""
        if self._fixed is not None:
            return self._fixed
        requested = self.settings.backend or scenario.backend or "auto"
        if hosts is None:
            hosts = self.settings.hosts or ((agent.host,) if agent.host else tuple(scenario.hosts))
        api_key_env = self.settings.api_key_env or scenario.api_key_env
        key = (requested, tuple(hosts), api_key_env)
        if key not in self._bindings:
            backend_settings = BackendSettings(
                hosts=tuple(hosts), timeouts=self.settings.timeouts, api_key_env=api_key_env
            )
            set_by = "--backend" if self.settings.backend else scenario.backend_set_by
            choice = await choose_backend(requested, backend_settings, set_by=set_by)
            backend = self._factory(choice.name, backend_settings)
            log.info("backend", backend=choice.name, host=backend.host, reason=choice.reason)
            self._bindings[key] = Binding(backend, choice)
        return self._bindings[key]

    def slots(self, backend: Backend) -> int:
        """Requests in flight per connection key: --concurrency, else the backend's default."""
        return max(1, self.settings.concurrency or backend.default_concurrency())

    def limit(self, backend: Backend, model: str) -> asyncio.Semaphore:
        key = backend.connection_key(model)
        if key not in self._limits:
            self._limits[key] = asyncio.Semaphore(self.slots(backend))
        return self._limits[key]

    def backends(self) -> list[Backend]:
        found = [b.backend for b in self._bindings.values()]
        if self._fixed is not None:
            found.append(self._fixed.backend)
        return found

    async def __aenter__(self) -> BackendPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        backends = self.backends()
        self._bindings.clear()
        self._fixed = None
        for backend in backends:
            try:
                await backend.aclose()
            except Exception:  # closing must not hide the run's own outcome
                log.warning("backend close failed", backend=backend.name, exc_info=True)
