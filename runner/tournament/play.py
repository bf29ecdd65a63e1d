"""Playing a tournament: resume from the folder, schedule games by model, judge, record.

Games run as ordinary conversations (one transcript each) through the orchestrator's
parts; this module decides which game starts when and on which host
(:mod:`runner.tournament.schedule`), keeps models loaded while their block runs and
unloads what no later work needs, turns finished games into exactly-once results
(:mod:`runner.tournament.ledger`), and when a server is down altogether, stops starting
games there and probes it with back-off instead of burning the remaining games as errors.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from runner.model.pool import BackendPool
from runner.play.conversation import Result
from runner.play.events import Observer
from runner.run.orchestrator import cancel_all
from runner.settings import RunSettings
from runner.tournament.games import Game, models
from runner.tournament.hosts import Host, Hosts
from runner.tournament.ledger import GAMES, Ledger, ResultRecord, result_from
from runner.tournament.schedule import Scheduler, Work
from runner.tournament.spec import Tournament
from runner.tournament.work import Judging, Workshop
from runner.transcript import read_transcript

log = structlog.get_logger("sparring.tournament")


@dataclass(frozen=True, slots=True)
class PlaySettings:
    out: Path
    run: RunSettings = field(default_factory=RunSettings)
    max_loaded: int | None = None
    max_errors: int | None = None
    accept_changes: bool = False
    retry_errors: bool = False


class TournamentObserver(Observer):
    """Conversation events, plus what a tournament display needs."""

    def planned(self, total: int, done: int, errors: int) -> None: ...
    def recorded(self, result: ResultRecord) -> None: ...
    def paused(self, host: str, message: str, wait: float) -> None: ...
    def resumed(self, host: str) -> None: ...


@dataclass(slots=True)
class Outcome:
    """How a ``play`` ended."""

    recorded: list[ResultRecord] = field(default_factory=list)
    loads: int = 0  # model loads the scheduler made
    stopped: str | None = None  # why it stopped before the end (--max-errors)


class Play:
    """One invocation of ``sparring tournament run``."""

    def __init__(
        self,
        tournament: Tournament,
        settings: PlaySettings,
        pool: BackendPool,
        observer: TournamentObserver,
    ) -> None:
        self.tournament = tournament
        self.settings = settings
        self.observer = observer
        self.hosts = Hosts(tournament, pool, settings.run.pull)
        self.work = Workshop(
            tournament,
            replace(settings.run, out_dir=settings.out / GAMES),
            secrets.token_hex(6),
            observer,
        )
        self.errors = 0
        self.outcome = Outcome()

    async def connect(self) -> None:
        await self.hosts.connect(self.settings.run.hosts or self.tournament.hosts)

    def capacity(self) -> int:
        return self.hosts.capacity(self.settings.max_loaded)

    async def run(self, ledger: Ledger) -> Outcome:
        reconciled = ledger.reconcile(self.settings.retry_errors)
        for result in reconciled.finalized:
            self.observer.recorded(result)
        judging = {game.id for game, _ in reconciled.to_judge}
        scheduler: Scheduler[Game | Judging] = Scheduler(list(self.hosts.by_name), self.capacity())
        for game in ledger.pending(self.settings.retry_errors):
            if game.id not in judging:
                scheduler.add(Work(game, models(self.tournament, game)))
        for game, transcript in reconciled.to_judge:
            self._add_judging(scheduler, game, transcript.path)
        done = len(ledger.games) - len(scheduler)
        errors = sum(1 for r in ledger.results.values() if r.status == "error")
        self.observer.planned(len(ledger.games), done, errors)
        running: dict[asyncio.Task[Any], tuple[Host, Work[Game | Judging]]] = {}
        try:
            await self._loop(ledger, scheduler, running)
        finally:
            await cancel_all(running)
            await self._release_all(scheduler)
        self.outcome.loads = scheduler.loads
        return self.outcome

    def _add_judging(self, scheduler: Scheduler[Game | Judging], game: Game, path: Path) -> None:
        judge = self.tournament.judge
        assert judge is not None
        scheduler.add(Work(Judging(game, path), frozenset({judge.model}), judging=True))

    async def _loop(
        self,
        ledger: Ledger,
        scheduler: Scheduler[Game | Judging],
        running: dict[asyncio.Task[Any], tuple[Host, Work[Game | Judging]]],
    ) -> None:
        probes: set[asyncio.Task[None]] = set()
        while True:
            self._fill(ledger, scheduler, running)
            await self._release_evicted(scheduler)
            waiting: set[asyncio.Task[Any]] = set(running) | probes
            if not waiting:
                if len(scheduler):
                    raise RuntimeError("tournament scheduler stalled with work left")
                return
            finished, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task in probes:
                    probes.discard(task)
                    continue
                host, work = running.pop(task)
                host.live -= 1
                scheduler.finished(host.name, work)
                probe = await self._finished(ledger, scheduler, host, work, task)
                if probe is not None:
                    probes.add(asyncio.create_task(probe))
                if self.outcome.stopped:
                    return

    def _fill(
        self,
        ledger: Ledger,
        scheduler: Scheduler[Game | Judging],
        running: dict[asyncio.Task[Any], tuple[Host, Work[Game | Judging]]],
    ) -> None:
        for host in self.hosts:
            while not host.paused and host.live < host.cap:
                work = scheduler.next(host.name)
                if work is None:
                    break
                item = work.item
                coro: Awaitable[Any] = (
                    self.work.judge(item, host)
                    if isinstance(item, Judging)
                    else self.work.play(item, host, ledger)
                )
                task = asyncio.ensure_future(coro)
                running[task] = (host, work)
                host.live += 1

    async def _finished(
        self,
        ledger: Ledger,
        scheduler: Scheduler[Game | Judging],
        host: Host,
        work: Work[Game | Judging],
        task: asyncio.Task[Any],
    ) -> Coroutine[Any, Any, None] | None:
        """Record what a task produced; a probe to await when its server is down."""
        item = work.item
        if isinstance(item, Judging):
            task.result()  # a judging that raised is sparring's bug: stop the run
            self._record(ledger, item.game, read_transcript(item.transcript))
            return None
        result: Result = task.result()
        error = result.error
        if result.status == "error" and error is not None and error.kind == "unavailable":
            # The server is down, not the game broken: play it again once it is back.
            ledger.aside(result.path)
            scheduler.requeue(work)
            return self.hosts.probe(host, error.message, self.observer)
        transcript = read_transcript(result.path)
        if ledger.needs_judging(transcript):
            self._add_judging(scheduler, item, result.path)
            return None
        self._record(ledger, item, transcript)
        return None

    def _record(self, ledger: Ledger, game: Game, transcript: Any) -> None:
        result = result_from(self.tournament, game, transcript, ledger.folder)
        ledger.record(result)
        self.outcome.recorded.append(result)
        self.observer.recorded(result)
        if result.status == "error":
            self.errors += 1
            limit = self.settings.max_errors
            if limit is not None and self.errors >= limit:
                self.outcome.stopped = f"{self.errors} games ended in error (--max-errors {limit})"

    async def _release_evicted(self, scheduler: Scheduler[Game | Judging]) -> None:
        for host_name, model in scheduler.take_evictions():
            await self.hosts.release(self.hosts[host_name], model)

    async def _release_all(self, scheduler: Scheduler[Game | Judging]) -> None:
        for host in self.hosts:
            for model in sorted(scheduler.hosts[host.name].resident):
                await self.hosts.release(host, model)
                scheduler.release(host.name, model)


async def play(
    tournament: Tournament, settings: PlaySettings, observer: TournamentObserver | None = None
) -> Outcome:
    """Run (or resume) ``tournament`` into ``settings.out``."""
    observer = observer or TournamentObserver()
    ledger = Ledger.open(settings.out, tournament, accept_changes=settings.accept_changes)
    try:
        async with BackendPool(replace(settings.run, out_dir=settings.out / GAMES)) as pool:
            game = Play(tournament, settings, pool, observer)
            await game.connect()
            return await game.run(ledger)
    finally:
        ledger.close()


async def check(tournament: Tournament, settings: PlaySettings) -> int:
    """Bind backends and check every model (entrants' and judge's) without playing; the
    number of models a server may hold at once, for the plan."""
    async with BackendPool(replace(settings.run, out_dir=settings.out / GAMES)) as pool:
        game = Play(tournament, settings, pool, TournamentObserver())
        await game.connect()
        return game.capacity()
