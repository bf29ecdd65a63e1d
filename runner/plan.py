"""Planning a run: one Plan per conversation, seeds, backends, and the preflight."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from agents.backends.base import Backend, ModelInfo
from agents.errors import ConfigError, ModelNotFound
from runner.pool import BackendPool, Binding
from runner.scenario import ResolvedScenario

log = structlog.get_logger("sparring.plan")


def derive_seed(base: int, *parts: object) -> int:
    """A seed for a sub-run that depends only on the base seed and the parts."""
    text = ":".join(str(p) for p in (base, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(slots=True)
class Plan:
    """One conversation to run: a scenario, its repeat index and seed, its backends."""

    scenario: ResolvedScenario
    repeat_index: int
    seed: int
    base_seed: int  # what ``seed`` was derived from: --seed BASE replays this run
    bindings: dict[str, Binding] = field(default_factory=dict)  # agent name -> binding


def plan_runs(scenarios: Sequence[ResolvedScenario]) -> list[Plan]:
    plans = []
    for scenario in scenarios:
        base = scenario.seed if scenario.seed is not None else secrets.randbelow(2**31)
        for i in range(scenario.repeat):
            plans.append(Plan(scenario, i, derive_seed(base, i), base))
    return plans


async def bind_plans(plans: Sequence[Plan], pool: BackendPool) -> None:
    """Give every agent its backend; the plans of one scenario share one bindings dict."""
    shared: dict[int, dict[str, Binding]] = {}
    for plan in plans:
        bindings = shared.get(id(plan.scenario))
        if bindings is None:
            bindings = shared[id(plan.scenario)] = {
                agent.name: await pool.bind(plan.scenario, agent) for agent in plan.scenario.agents
            }
        plan.bindings = bindings


def _progress_for(
    model: str, progress: Callable[[str, str, int | None, int | None], None] | None
) -> Callable[[str, int | None, int | None], None]:
    def report(status: str, completed: int | None, total: int | None) -> None:
        if progress is not None:
            progress(model, status, completed, total)

    return report


async def preflight(
    plans: Sequence[Plan],
    *,
    pull: bool = False,
    progress: Callable[[str, str, int | None, int | None], None] | None = None,
) -> dict[tuple[int, str], ModelInfo]:
    """Check every backend has every model it will be asked for, before the first chat.

    Returns what the backends report about each model (for digests in transcripts), keyed
    by (id of backend, model). Missing models raise one ConfigError naming each of them,
    unless ``pull`` is set and the backend can pull.
    """
    needed: dict[int, tuple[Backend, set[str]]] = {}
    unsent: dict[int, set[str]] = {}
    for plan in plans:
        for agent in plan.scenario.agents:
            backend = plan.bindings[agent.name].backend
            needed.setdefault(id(backend), (backend, set()))[1].add(agent.model)
            unsent.setdefault(id(backend), set()).update(
                agent.options.unsupported(backend.supported_options)
            )
    for key, options in unsent.items():
        if options:  # once per run and engine, not once per request
            backend = needed[key][0]
            log.warning(
                "options not sent: the engine has no such setting",
                backend=backend.name,
                host=backend.host,
                options=sorted(options),
            )
    infos: dict[tuple[int, str], ModelInfo] = {}
    problems: list[str] = []
    for key, (backend, models) in needed.items():
        for model in sorted(models):
            try:
                infos[(key, model)] = await backend.find_model(model)
                continue
            except ModelNotFound as exc:
                if not (pull and backend.can_pull):
                    problems.append(f"{backend.name} at {backend.host}: {_missing(exc, model)}")
                    continue
            log.info("pulling", model=model, host=backend.host)
            await backend.pull(model, _progress_for(model, progress))
            infos[(key, model)] = await backend.find_model(model)
    if problems:
        raise ConfigError(problems)
    return infos


def _missing(exc: ModelNotFound, model: str) -> str:
    text = f"model {model!r} not found" if model not in exc.message else exc.message
    return f"{text}; {exc.hint}" if exc.hint else text
