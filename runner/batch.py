"""A batch from the command line: prepare, show, run, stream results, sum up."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from rich.console import Console

from runner.console import (
    SHOWN,
    LiveObserver,
    ProgressObserver,
    PullProgress,
    print_plan,
    summary,
)
from runner.conversation import Result
from runner.events import Observer, Observers
from runner.orchestrator import iter_conversations, prepare
from runner.pool import BackendPool
from runner.scenario import ResolvedScenario
from runner.settings import RunSettings
from runner.tally import Tally


async def run_batch(
    scenarios: Sequence[ResolvedScenario],
    settings: RunSettings,
    *,
    out: Console,
    err: Console,
    quiet: bool = False,
    dry_run: bool = False,
) -> bool:
    """Run (or, with ``dry_run``, plan) the scenarios; True when a conversation failed."""
    async with BackendPool(settings) as pool:
        ready = await prepare(
            scenarios,
            pool,
            pull=settings.pull,
            progress=PullProgress(err),
            max_conversations=settings.max_conversations,
        )
        if dry_run:
            print_plan(out, ready.run, ready.max_conversations)
            return False
        total = len(ready.run)
        display: contextlib.AbstractContextManager[Observer]
        if quiet:
            display = contextlib.nullcontext(Observer())
        elif total == 1:
            display = contextlib.nullcontext(LiveObserver(out))
        else:
            max_turns = sum(p.scenario.repeat * p.scenario.max_turns for p in ready.run.parts)
            display = ProgressObserver(err, total, max_turns)
        tally = Tally()
        shown: list[Result] = []
        try:
            with display as observer:
                async for result in iter_conversations(
                    ready.run,
                    pool,
                    settings,
                    max_conversations=ready.max_conversations,
                    observer=Observers(observer, tally),
                    model_infos=ready.infos,
                ):
                    # A screenful of conversations, then only failures (also capped).
                    if len(shown) < SHOWN or (result.status == "error" and len(shown) < 2 * SHOWN):
                        shown.append(result)
        finally:
            if tally.conversations:
                summary(out, sorted(shown, key=lambda r: r.ordinal), tally)
        return tally.statuses["error"] > 0
