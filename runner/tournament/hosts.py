"""The servers a tournament plays on: one backend per host, every model checked on it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from agents.agent import Agent
from agents.backends import ENGINES
from agents.backends.base import Backend
from agents.errors import BackendError, ModelNotFound
from runner.model.handle import Model
from runner.model.missing import Need
from runner.model.pool import BackendPool
from runner.model.preflight import preflight
from runner.tournament.spec import Tournament

log = structlog.get_logger("sparring.tournament")

DEFAULT_MAX_LOADED = 3  # ollama's default on CPU, for engines that cannot say what they hold
PROBE_CAP = 60.0  # longest wait between probes of a server that is down


@dataclass(slots=True)
class Host:
    name: str  # "" for the backend's default address
    backend: Backend
    models: dict[str, Model] = field(default_factory=dict)  # by name
    live: int = 0
    cap: int = 1
    paused: bool = False


class Hosts:
    """Every host of a tournament, and its models."""

    def __init__(self, tournament: Tournament, pool: BackendPool, pull: bool) -> None:
        self.tournament = tournament
        self.pool = pool
        self.pull = pull
        self.by_name: dict[str, Host] = {}

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
            models = {}
            for model in self.models():
                agent = Agent(name="entrant", model=model)
                models[model] = await self.pool.bind(scenario, agent, host_tuple)
            first = next(iter(models.values()))
            self.by_name[name] = Host(name, first.backend, models, cap=self.pool.capacity(first))
        uses = [
            (host.models[model], self.tournament.source, self._role(model))
            for host in self.by_name.values()
            for model in self.models()
        ]
        await preflight(uses, pull=self.pull, explain=_explain)

    def models(self) -> list[str]:
        names = {e.model for e in self.tournament.entrants}
        names.update(self.tournament.scenario_models())
        if self.tournament.judge is not None:
            names.add(self.tournament.judge.model)
        return sorted(names)

    def _role(self, model: str) -> str:
        """ "judge" for the judge's model when no entrant plays it, "scenario" for one only
        the scenario brings (a moderator's), else "entrant"."""
        judge = self.tournament.judge
        if model in self.tournament.scenario_models() and all(
            e.model != model for e in self.tournament.entrants
        ):
            return "scenario"
        if (
            judge is not None
            and judge.model == model
            and all(e.model != model for e in self.tournament.entrants)
        ):
            return "judge"
        return "entrant"

    def assumed(self, host: Host) -> int:
        """Models a server that cannot say what it holds is scheduled as holding."""
        engine = ENGINES.get(host.backend.name)
        if engine is not None and engine.serves_all:  # it serves what it was started with
            return max(len(self.models()), 1)
        return DEFAULT_MAX_LOADED

    def ours(self, host: Host) -> dict[str, str]:
        """The server's names of the tournament's models (``qwen`` is ``qwen:latest``)."""
        names = {model: model for model in self.models()}
        for model in self.models():
            info = host.models[model].info
            if info is not None and info.name:
                names[info.name] = model
        return names

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
                except BackendError as exc:  # an engine's failure to answer: still down
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
            await host.models[model].backend.release(model)
        except BackendError as exc:  # unloading is a courtesy: never fail the tournament on it
            log.warning("could not unload a model", model=model, error=str(exc))


async def _explain(need: Need, missing: dict[str, ModelNotFound], pull: bool) -> list[str]:
    """One line per missing model: which engine, the model's role, the engine's hint."""
    backend = need.backend
    lines = []
    for model, exc in missing.items():
        hint = f"; {exc.hint}" if exc.hint else ""
        role = need.models[model][0][1]
        lines.append(f"{backend.name} at {backend.host}: {role} model {model!r} not found{hint}")
    return lines
