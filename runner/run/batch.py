"""A batch from the command line: prepare, show, run, stream results, sum up."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from runner.console.live import LiveObserver
from runner.console.progress import ProgressObserver, PullProgress
from runner.console.summary import SHOWN, print_plan, summary
from runner.model.pool import BackendPool
from runner.play.conversation import Result
from runner.play.events import ConversationFinished, Observer, Observers
from runner.run.orchestrator import iter_conversations, prepare
from runner.run.tally import Tally
from runner.scenario.schema import ResolvedScenario
from runner.settings import RunSettings


class Listing(Observer):
    """The conversations a summary lists one by one: a screenful, then only failures.

    It listens for ends rather than results because conversations cancelled by Ctrl-C end
    (their transcripts get an end line) but never come back as results.
    """

    def __init__(self) -> None:
        self.shown: list[Result] = []

    def conversation_finished(self, event: ConversationFinished) -> None:
        shown = len(self.shown)
        if shown < SHOWN or (event.end.status == "error" and shown < 2 * SHOWN):
            self.shown.append(Result(event.path, event.run, event.end, event.ordinal))

    def in_order(self) -> list[Result]:
        return sorted(self.shown, key=lambda r: r.ordinal)


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
        tally, listing = Tally(), Listing()
        try:
            with display as observer:
                async for _ in iter_conversations(
                    ready.run,
                    settings,
                    max_conversations=ready.max_conversations,
                    observer=Observers(observer, tally, listing),
                ):
                    pass
        finally:
            if tally.conversations:
                summary(
                    out,
                    listing.in_order(),
                    tally,
                    folder=Path(settings.out_dir),
                    not_started=total - tally.started,
                )
        return tally.statuses["error"] > 0
