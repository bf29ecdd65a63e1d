"""Planning a run: which conversations, with which seeds and models, and the preflight.

A :class:`RunPlan` is lazy: it knows its scenarios and their base seeds and yields one
:class:`Plan` per conversation when iterated, so planning ten thousand conversations
costs no more memory than planning one. Models are bound once per scenario and shared
by its plans.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import structlog

from agents.backends.base import Backend
from runner.model import preflight as checks
from runner.model.handle import Model
from runner.model.pool import BackendPool
from runner.model.preflight import PullProgress
from runner.play.conversation import Plan
from runner.play.motion import repeat_motion
from runner.play.seeds import derive_seed
from runner.scenario.schema import ResolvedScenario

log = structlog.get_logger("sparring.plan")


@dataclass(slots=True)
class ScenarioPlan:
    """A scenario's share of a run: its base seed and its agents' models."""

    scenario: ResolvedScenario
    base_seed: int
    models: dict[str, Model] = field(default_factory=dict)

    def plan(self, repeat_index: int, ordinal: int = 0) -> Plan:
        seed = derive_seed(self.base_seed, repeat_index)
        motions = self.scenario.motions
        motion = repeat_motion(motions, self.base_seed, repeat_index) if motions else None
        return Plan(
            self.scenario, repeat_index, seed, self.base_seed, self.models, ordinal, motion=motion
        )


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
        """Give every agent of every scenario its model."""
        for part in self.parts:
            for agent in part.scenario.voices:
                part.models[agent.name] = await pool.bind(part.scenario, agent)

    def uses(self) -> Iterable[checks.Use]:
        """(model, scenario file, agent name) for every agent of every scenario."""
        for part in self.parts:
            for agent in part.scenario.voices:
                yield part.models[agent.name], part.scenario.source, agent.name

    def models(self) -> list[Model]:
        """Every bound model, once."""
        return list(dict.fromkeys(model for model, _, _ in self.uses()))


def _warn_unsent(run: RunPlan) -> None:
    """Options an engine cannot send: said once per run and engine, not once per request."""
    unsent: list[tuple[Backend, set[str]]] = []
    for part in run.parts:
        for agent in part.scenario.voices:
            backend = part.models[agent.name].backend
            found = next((u for u in unsent if u[0] is backend), None)
            if found is None:
                found = (backend, set())
                unsent.append(found)
            found[1].update(agent.options.unsupported(backend.supported_options))
    for backend, names in unsent:
        if names:
            log.warning(
                "options not sent: the engine has no such setting",
                backend=backend.name,
                host=backend.host,
                options=sorted(names),
            )


async def preflight(
    run: RunPlan, *, pull: bool = False, progress: PullProgress | None = None
) -> None:
    """Check every engine has every model it will be asked for, before the first chat.

    What the engines report about each model lands on its handle (``Model.info``, for
    digests in transcripts). Missing models raise one ConfigError that says, per engine,
    what was tried, what it has and what to do (:mod:`runner.model.missing`); with
    ``pull`` an engine that can pull fetches them instead.
    """
    _warn_unsent(run)
    await checks.preflight(run.uses(), pull=pull, progress=progress)
