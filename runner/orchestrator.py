"""The async orchestrator: conversations, turns, backends, limits and transcripts.

Many conversations run at once as tasks of one TaskGroup. Each request waits on the
semaphore of its backend's connection key (a server, or an embedded model), so the
number of requests in flight per server stays at ``--concurrency`` while conversations
interleave freely. A conversation that fails records its error in its own transcript and
the others carry on; only cancellation (Ctrl-C, SIGTERM) and configuration errors
propagate.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence

from agents.backends.base import ModelInfo
from runner.conversation import Conversation, Result
from runner.events import Observer
from runner.plan import Plan, bind_plans, plan_runs, preflight
from runner.pool import BackendPool
from runner.scenario import ResolvedScenario
from runner.settings import RunSettings
from runner.transcript import ensure_writable


async def run_conversations(
    plans: Sequence[Plan],
    pool: BackendPool,
    settings: RunSettings,
    *,
    run_id: str | None = None,
    observer: Observer | None = None,
    model_infos: dict[tuple[int, str], ModelInfo] | None = None,
) -> list[Result]:
    """Run every planned conversation concurrently; results come back in plan order."""
    run_id = run_id or secrets.token_hex(6)
    ensure_writable(settings.out_dir)
    conversations = [
        Conversation(
            plan, pool, settings, run_id=run_id, observer=observer, model_infos=model_infos
        )
        for plan in plans
    ]
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(conv.run()) for conv in conversations]
    return [task.result() for task in tasks]


async def prepare(
    scenarios: Sequence[ResolvedScenario],
    pool: BackendPool,
    *,
    pull: bool = False,
    progress: Callable[[str, str, int | None, int | None], None] | None = None,
) -> tuple[list[Plan], dict[tuple[int, str], ModelInfo]]:
    """Everything before the first chat: plan, bind backends, check (or pull) models."""
    plans = plan_runs(scenarios)
    await bind_plans(plans, pool)
    infos = await preflight(plans, pull=pull, progress=progress)
    return plans, infos


async def run_scenarios(
    scenarios: Sequence[ResolvedScenario],
    settings: RunSettings,
    *,
    pool: BackendPool | None = None,
    observer: Observer | None = None,
    run_id: str | None = None,
    progress: Callable[[str, str, int | None, int | None], None] | None = None,
) -> list[Result]:
    """Plan, bind backends, preflight, then run everything.

    Without a ``pool`` the run makes its own and closes it (and so every backend, engine
    thread and loaded model) before returning; a given pool stays open for its owner.
    """
    if pool is None:
        async with BackendPool(settings) as own:
            return await run_scenarios(
                scenarios, settings, pool=own, observer=observer, run_id=run_id, progress=progress
            )
    plans, infos = await prepare(scenarios, pool, pull=settings.pull, progress=progress)
    return await run_conversations(
        plans, pool, settings, run_id=run_id, observer=observer, model_infos=infos
    )
