"""Planning a run: which conversations, with which seeds and backends, and the preflight.

A :class:`RunPlan` is lazy: it knows its scenarios and their base seeds and yields one
:class:`Plan` per conversation when iterated, so planning ten thousand conversations
costs no more memory than planning one. Backends are bound once per scenario and shared
by its plans.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import structlog

from agents.backends.base import Backend, ModelInfo
from agents.errors import ConfigError, ModelNotFound
from runner.model.missing import Need, explain
from runner.model.pool import BackendPool, Binding
from runner.play.seeds import derive_seed
from runner.scenario.schema import ResolvedScenario

log = structlog.get_logger("sparring.plan")

PullProgress = Callable[[str, str, int | None, int | None], None]


@dataclass(slots=True)
class Plan:
    """One conversation to run: a scenario, its repeat index and seed, its backends."""

    scenario: ResolvedScenario
    repeat_index: int
    seed: int
    base_seed: int  # what ``seed`` was derived from: --seed BASE replays this run
    bindings: dict[str, Binding] = field(default_factory=dict)  # agent name -> binding
    ordinal: int = 0  # position in its run's plan
    # A tournament game: its transcript's file name (without .jsonl) and its labels
    # (tournament, tournament_hash, game_id) for the run line.
    stem: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ScenarioPlan:
    """A scenario's share of a run: its base seed and its agents' backends."""

    scenario: ResolvedScenario
    base_seed: int
    bindings: dict[str, Binding] = field(default_factory=dict)

    def plan(self, repeat_index: int, ordinal: int = 0) -> Plan:
        seed = derive_seed(self.base_seed, repeat_index)
        return Plan(self.scenario, repeat_index, seed, self.base_seed, self.bindings, ordinal)


class RunPlan:
    """Every conversation of a run, yielded one at a time in scenario and repeat order."""

    def __init__(self, scenarios: Sequence[ResolvedScenario]) -> None:
        self.parts = [
            ScenarioPlan(s, s.seed if s.seed is not None else secrets.randbelow(2**31))
            for s in scenarios
        ]

    def __len__(self) -> int:
        return sum(part.scenario.repeat for part in self.parts)

    def __iter__(self) -> Iterator[Plan]:
        ordinal = 0
        for part in self.parts:
            for i in range(part.scenario.repeat):
                yield part.plan(i, ordinal)
                ordinal += 1

    async def bind(self, pool: BackendPool) -> None:
        """Give every agent of every scenario its backend."""
        for part in self.parts:
            for agent in part.scenario.agents:
                part.bindings[agent.name] = await pool.bind(part.scenario, agent)

    def backends(self) -> Iterable[tuple[Backend, str, ResolvedScenario]]:
        """(backend, model, scenario) for every agent of every scenario."""
        for part in self.parts:
            for agent in part.scenario.agents:
                yield part.bindings[agent.name].backend, agent.model, part.scenario


def plan_runs(scenarios: Sequence[ResolvedScenario]) -> RunPlan:
    return RunPlan(scenarios)


def _progress_for(
    model: str, progress: PullProgress | None
) -> Callable[[str, int | None, int | None], None]:
    def report(status: str, completed: int | None, total: int | None) -> None:
        if progress is not None:
            progress(model, status, completed, total)

    return report


def _warn_unsent(run: RunPlan) -> None:
    """Options an engine cannot send: said once per run and engine, not once per request."""
    unsent: dict[int, tuple[Backend, set[str]]] = {}
    for part in run.parts:
        for agent in part.scenario.agents:
            backend = part.bindings[agent.name].backend
            unsupported = agent.options.unsupported(backend.supported_options)
            unsent.setdefault(id(backend), (backend, set()))[1].update(unsupported)
    for backend, names in unsent.values():
        if names:
            log.warning(
                "options not sent: the engine has no such setting",
                backend=backend.name,
                host=backend.host,
                options=sorted(names),
            )


def _needs(run: RunPlan) -> dict[int, Need]:
    """Per backend instance: the models it will be asked for, and who asks."""
    needs: dict[int, Need] = {}
    for part in run.parts:
        for agent in part.scenario.agents:
            binding = part.bindings[agent.name]
            need = needs.setdefault(id(binding.backend), Need(binding.backend, binding.choice))
            need.add(agent.model, part.scenario.source, agent.name)
    return needs


async def preflight(
    run: RunPlan, *, pull: bool = False, progress: PullProgress | None = None
) -> dict[tuple[int, str], ModelInfo]:
    """Check every backend has every model it will be asked for, before the first chat.

    Returns what the backends report about each model (for digests in transcripts), keyed
    by (id of backend, model). Missing models raise one ConfigError that says, per engine,
    what was tried, what it has and what to do (:mod:`runner.model.missing`); with ``pull`` a
    backend that can pull fetches them instead.
    """
    _warn_unsent(run)
    infos: dict[tuple[int, str], ModelInfo] = {}
    problems: list[str] = []
    for key, need in _needs(run).items():
        backend = need.backend
        missing: dict[str, ModelNotFound] = {}
        for model in sorted(need.models):
            try:
                infos[(key, model)] = await backend.find_model(model)
                continue
            except ModelNotFound as exc:
                if not (pull and backend.can_pull):
                    missing[model] = exc
                    continue
            log.info("pulling", model=model, host=backend.host)
            await backend.pull(model, _progress_for(model, progress))
            infos[(key, model)] = await backend.find_model(model)
        if missing:
            problems.extend(await explain(need, missing, pull))
    if problems:
        raise ConfigError(problems)
    return infos
