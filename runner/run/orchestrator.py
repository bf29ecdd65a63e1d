"""The async orchestrator: many conversations at once, within bounds.

A run is fed from its plan one conversation at a time: at most ``max_conversations`` are
alive at once (each holds an open transcript), a new one starts as soon as one ends, and
results are handed out as they finish. Memory and open files stay flat however many
conversations are planned. Each request also waits on the semaphore of its backend's
connection key (a server, or an embedded model), so requests in flight per server stay at
``--concurrency``.

A conversation that fails records its error in its own transcript and the others carry
on; only cancellation (Ctrl-C, SIGTERM), configuration errors and a transcript that
cannot be written (disk full: every other conversation would fail too) stop the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from runner.model.pool import BackendPool
from runner.play.conversation import Conversation, Plan, Result
from runner.play.events import Observer
from runner.run.plan import PullProgress, RunPlan, preflight
from runner.scenario.schema import ResolvedScenario
from runner.settings import RunSettings
from runner.transcript import ensure_writable

log = structlog.get_logger("sparring.orchestrator")

# Files a run needs besides transcripts: sockets, the engine's files, logs, Python's own.
RESERVED_FILES = 64


@dataclass(slots=True)
class Prepared:
    """A run ready to start: its plan, its models checked, its bounds."""

    run: RunPlan
    max_conversations: int


def default_max_conversations(run: RunPlan, pool: BackendPool) -> int:
    """Enough conversations to keep every request slot of every server busy."""
    slots = {model.connection_key: pool.capacity(model) for model in run.models()}
    return max(1, sum(slots.values()))


def file_budget() -> int | None:
    """How many transcripts may be open at once under this process's open-file limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(1, soft - RESERVED_FILES)


def bounded(requested: int) -> int:
    budget = file_budget()
    if budget is not None and requested > budget:
        log.warning(
            "fewer conversations at once: the open-file limit is low",
            requested=requested,
            allowed=budget,
            hint="raise it with `ulimit -n`",
        )
        return budget
    return requested


async def prepare(
    scenarios: Sequence[ResolvedScenario],
    pool: BackendPool,
    *,
    pull: bool = False,
    progress: PullProgress | None = None,
    max_conversations: int | None = None,
) -> Prepared:
    """Everything before the first chat: plan, bind backends, check (or pull) models."""
    run = RunPlan(scenarios)
    await run.bind(pool)
    await preflight(run, pull=pull, progress=progress)
    limit = max_conversations or default_max_conversations(run, pool)
    return Prepared(run, bounded(limit))


async def iter_conversations(
    plans: Iterable[Plan],
    settings: RunSettings,
    *,
    max_conversations: int,
    run_id: str | None = None,
    observer: Observer | None = None,
) -> AsyncIterator[Result]:
    """Run the planned conversations, at most ``max_conversations`` at once; yield each
    result as its conversation ends. Leaving early (or being cancelled) cancels the ones
    still running, each closing its transcript as ``cancelled``."""
    run_id = run_id or secrets.token_hex(6)
    ensure_writable(settings.out_dir)
    pending = iter(plans)
    running: set[asyncio.Task[Result]] = set()

    def start_next() -> None:
        plan = next(pending, None)
        if plan is not None:
            conversation = Conversation(plan, settings, run_id=run_id, observer=observer)
            running.add(asyncio.create_task(conversation.run()))

    try:
        for _ in range(max(1, max_conversations)):
            start_next()
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.discard(task)
                result = task.result()  # disk full: raised here, stops the run
                start_next()
                yield result
    finally:
        await cancel_all(running)


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them: each conversation closes its transcript. Their
    outcome is not the caller's to raise."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    if tasks:
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)


async def run_conversations(
    plans: Iterable[Plan],
    settings: RunSettings,
    *,
    max_conversations: int,
    run_id: str | None = None,
    observer: Observer | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run every planned conversation; the results, in the order they finished.

    For runs too large to keep every result, iterate :func:`iter_conversations` instead.
    """
    results = []
    async for result in iter_conversations(
        plans, settings, max_conversations=max_conversations, run_id=run_id, observer=observer
    ):
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


async def run_scenarios(
    scenarios: Sequence[ResolvedScenario],
    settings: RunSettings,
    *,
    pool: BackendPool | None = None,
    observer: Observer | None = None,
    run_id: str | None = None,
    progress: PullProgress | None = None,
) -> list[Result]:
    """Plan, bind backends, preflight, then run everything; results in plan order.

    Without a ``pool`` the run makes its own and closes it (and so every backend, engine
    thread and loaded model) before returning; a given pool stays open for its owner.
    """
    if pool is None:
        async with BackendPool(settings) as own:
            return await run_scenarios(
                scenarios, settings, pool=own, observer=observer, run_id=run_id, progress=progress
            )
    ready = await prepare(
        scenarios,
        pool,
        pull=settings.pull,
        progress=progress,
        max_conversations=settings.max_conversations,
    )
    results = await run_conversations(
        ready.run,
        settings,
        max_conversations=ready.max_conversations,
        run_id=run_id,
        observer=observer,
    )
    order = {(r.scenario, r.repeat_index): i for i, r in enumerate(results)}
    names = [p.scenario.name for p in ready.run.parts]
    return sorted(
        results,
        key=lambda r: (
            names.index(r.scenario),
            r.repeat_index,
            order[(r.scenario, r.repeat_index)],
        ),
    )
