"""Planning a run: one Plan per conversation, seeds, backends, and the preflight."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from agents.backends.base import Backend, ModelInfo
from agents.backends.gguf import BUILTINS
from agents.errors import ConfigError
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
    for plan in plans:
        for agent in plan.scenario.agents:
            plan.bindings[agent.name] = await pool.bind(plan.scenario, agent)


def _progress_for(
    model: str, progress: Callable[[str, str, int | None, int | None], None] | None
) -> Callable[[str, int | None, int | None], None]:
    def report(status: str, completed: int | None, total: int | None) -> None:
        if progress is not None:
            progress(model, status, completed, total)

    return report


def _lookup(listed: dict[str, ModelInfo], model: str) -> ModelInfo | None:
    # ollama lists "llama3.2:latest" for a scenario that says "llama3.2".
    return listed.get(model) or listed.get(f"{model}:latest")


def _is_file(path: str) -> bool:
    return Path(path).expanduser().is_file()


MISSING_HINTS = {
    "ollama": "run `ollama pull {model}` or pass --pull",
    "local": "the embedded engine runs "
    + ", ".join(f"{b.name} ({b.install})" for b in BUILTINS.values())
    + ", a path to a .gguf file, or a model pulled with ollama",
    "openai": "the server does not list it at /v1/models",
}


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
    for plan in plans:
        for agent in plan.scenario.agents:
            backend = plan.bindings[agent.name].backend
            needed.setdefault(id(backend), (backend, set()))[1].add(agent.model)
    infos: dict[tuple[int, str], ModelInfo] = {}
    problems: list[str] = []
    for key, (backend, models) in needed.items():
        listed = {info.name: info for info in await backend.list_models()}
        missing = [m for m in sorted(models) if _lookup(listed, m) is None]
        if missing and pull and backend.name == "ollama":
            for model in missing:
                log.info("pulling", model=model, host=backend.host)
                await backend.pull(model, _progress_for(model, progress))
            listed = {info.name: info for info in await backend.list_models()}
        for model in sorted(models):
            if model.endswith(".gguf") and await asyncio.to_thread(_is_file, model):
                continue
            info = _lookup(listed, model)
            if info is not None:
                infos[(key, model)] = info
                continue
            hint = MISSING_HINTS.get(backend.name, "").format(model=model)
            problems.append(
                f"{backend.name} at {backend.host}: model {model!r} not found"
                + (f"; {hint}" if hint else "")
            )
    if problems:
        raise ConfigError(problems)
    return infos
