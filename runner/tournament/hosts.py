"""The servers a tournament plays on: one backend per host, every model checked on it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from agents.agent import Agent
from agents.backends.base import Backend, ModelInfo
from agents.errors import ConfigError, ModelNotFound
from runner.model.pool import BackendPool, Binding
from runner.tournament.spec import Tournament

log = structlog.get_logger("sparring.tournament")

DEFAULT_MAX_LOADED = 3  # ollama's OLLAMA_MAX_LOADED_MODELS on CPU
PROBE_CAP = 60.0  # longest wait between probes of a server that is down


@dataclass(slots=True)
class Host:
    name: str  # "" for the backend's default address
    backend: Backend
    bindings: dict[str, Binding] = field(default_factory=dict)  # model -> binding
    live: int = 0
    cap: int = 1
    paused: bool = False


class Hosts:
    """Every host of a tournament, its bindings, and what its servers said of the models."""

    def __init__(self, tournament: Tournament, pool: BackendPool, pull: bool) -> None:
        self.tournament = tournament
        self.pool = pool
        self.pull = pull
        self.by_name: dict[str, Host] = {}
        self.infos: dict[tuple[int, str], ModelInfo] = {}

    def __iter__(self) -> Iterator[Host]:
        return iter(self.by_name.values())

    def __getitem__(self, name: str) -> Host:
        return self.by_name[name]

    async def connect(self, names: tuple[str, ...]) -> None:
        """Bind a backend per host and check (or pull) every model on it."""
        # The tournament's backend: comes before its scenario's; --backend before both.
        scenario = self.tournament.scenario
        scenario = replace(scenario, backend=self.tournament.backend or scenario.backend)
        for name in names or ("",):
            host_tuple = (name,) if name else None
            bindings = {}
            for model in self.models():
                agent = Agent(name="entrant", model=model)
                bindings[model] = await self.pool.bind(scenario, agent, host_tuple)
            backend = next(iter(bindings.values())).backend
            self.by_name[name] = Host(name, backend, bindings)
        await self._preflight()
        for host in self.by_name.values():
            per_slot = getattr(host.backend, "conversations_per_slot", 2)
            host.cap = self.pool.slots(host.backend) * per_slot

    def models(self) -> list[str]:
        names = {e.model for e in self.tournament.entrants}
        if self.tournament.judge is not None:
            names.add(self.tournament.judge.model)
        return sorted(names)

    async def _preflight(self) -> None:
        problems = []
        for host in self.by_name.values():
            backend = host.backend
            for model in self.models():
                try:
                    self.infos[(id(backend), model)] = await backend.find_model(model)
                    continue
                except ModelNotFound as exc:
                    if not (self.pull and backend.can_pull):
                        hint = f"; {exc.hint}" if exc.hint else ""
                        role = "judge" if self._is_judge(model) else "entrant"
                        where = f"{backend.name} at {backend.host}"
                        problems.append(f"{where}: {role} model {model!r} not found{hint}")
                        continue
                await backend.pull(model, lambda *_: None)
                self.infos[(id(backend), model)] = await backend.find_model(model)
        if problems:
            raise ConfigError(problems)

    def _is_judge(self, model: str) -> bool:
        judge = self.tournament.judge
        return (
            judge is not None
            and judge.model == model
            and all(e.model != model for e in self.tournament.entrants)
        )

    def capacity(self, requested: int | None) -> int:
        """Models a server may hold at once: asked for, the file's, else by engine."""
        if requested:
            return requested
        if self.tournament.max_loaded:
            return self.tournament.max_loaded
        backend = next(iter(self.by_name.values())).backend
        if backend.name == "openai":  # the server serves what it was started with
            return max(len(self.models()), 1)
        return DEFAULT_MAX_LOADED

    async def probe(self, host: Host, message: str, observer: Any) -> None:
        """Pause ``host`` and ask it for its models, backing off, until it answers."""
        if host.paused:
            return
        host.paused = True
        wait = 1.0
        try:
            while True:
                observer.paused(host.name or str(host.backend.host), message, wait)
                log.warning("server down: pausing", host=host.backend.host, retry_in_s=wait)
                await asyncio.sleep(wait)
                try:
                    await host.backend.list_models()
                except Exception as exc:  # any failure to answer means: still down
                    message = str(exc)
                    wait = min(PROBE_CAP, wait * 2) * random.uniform(0.8, 1.0)
                    continue
                log.warning("server back: resuming", host=host.backend.host)
                observer.resumed(host.name or str(host.backend.host))
                return
        finally:
            host.paused = False

    async def release(self, host: Host, model: str) -> None:
        try:
            await host.bindings[model].backend.release(model)
        except Exception as exc:  # unloading is a courtesy: never fail the tournament on it
            log.warning("could not unload a model", model=model, error=str(exc))
