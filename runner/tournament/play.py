"""Playing a tournament: resume from the folder, schedule games by model, judge, record.

Games run as ordinary conversations (one transcript each) through the orchestrator's
parts; this module decides which game starts when and on which host
(:mod:`runner.tournament.schedule`), keeps models loaded while their block runs and
unloads what no later work needs, turns finished games into exactly-once results
(:mod:`runner.tournament.ledger`), and when a server is down altogether, stops starting
games there and probes it with back-off instead of burning the remaining games as errors.

On a server that says what it holds (ollama), it loads each block's models itself before
the block's games start, reads the server's listing after every load and whenever a reply
says its model had to be loaded again, and learns from both how many models the server
holds (:mod:`runner.tournament.capacity`), keeping what it learned in the folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import structlog

from agents.backends.base import LoadedModel, ShowsLoaded
from agents.errors import BackendError, BackendUnavailable
from runner.model.pool import BackendPool
from runner.play.conversation import Result
from runner.play.events import Observer, TurnFinished
from runner.run.orchestrator import cancel_all
from runner.settings import RunSettings
from runner.tournament.capacity import Capacity, read_learned, write_learned
from runner.tournament.games import Game, models
from runner.tournament.hosts import DEFAULT_MAX_LOADED, Host, Hosts
from runner.tournament.ledger import GAMES, LOAD_MS, Ledger, ResultRecord, result_from
from runner.tournament.schedule import Scheduler, Work
from runner.tournament.spec import Tournament
from runner.tournament.turns import TurnGate
from runner.tournament.work import EXPENDABLE_KEEP_ALIVE, Judging, Workshop
from runner.transcript import read_transcript

log = structlog.get_logger("sparring.tournament")

# Games in play at once on a server holding one model: their turns wait for their model,
# a transcript open each, and every load serves a turn of each game waiting for it.
SWAPPING_GAMES = 64


@dataclass(frozen=True, slots=True)
class PlaySettings:
    out: Path
    run: RunSettings = field(default_factory=RunSettings)
    max_loaded: int | Literal["learn"] | None = None  # None: the file's, else learn
    max_errors: int | None = None
    accept_changes: bool = False
    retry_errors: bool = False


class TournamentObserver(Observer):
    """Conversation events, plus what a tournament display needs."""

    def planned(self, total: int, done: int, errors: int) -> None: ...
    def recorded(self, result: ResultRecord) -> None: ...
    def paused(self, host: str, message: str, wait: float) -> None: ...
    def resumed(self, host: str) -> None: ...
    def scheduling(self, lines: list[str]) -> None:
        """How each server is scheduled (what it holds, or that it cannot say), at the
        start of a run."""


@dataclass(slots=True)
class Outcome:
    """How a ``play`` ended."""

    recorded: list[ResultRecord] = field(default_factory=list)
    loads: int = 0  # model loads the servers made in this run, as they reported them
    servers: list[Capacity] = field(default_factory=list)  # what each server holds
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
        self.capacities: dict[str, Capacity] = {}  # host name -> what its server holds
        self.relist: set[str] = set()  # hosts whose server reloaded a model behind our back
        self.gates: dict[str, TurnGate] = {}  # host name -> the order of its turns

    async def connect(self) -> None:
        await self.hosts.connect(self.settings.run.hosts or self.tournament.hosts)
        for host in self.hosts:
            # A server holding one model gets its games' requests a model at a time.
            gate = self.gates[host.name] = TurnGate()
            host.models = {name: replace(m, gate=gate) for name, m in host.models.items()}
        self._capacities()

    def _override(self) -> tuple[int | None, str | None]:
        asked = self.settings.max_loaded
        if isinstance(asked, int):
            return asked, "--max-loaded"
        if asked is None and isinstance(self.tournament.max_loaded, int):
            return self.tournament.max_loaded, "the tournament file's max_loaded"
        return None, None

    def _capacities(self) -> None:
        stored = read_learned(self.settings.out)
        override, by = self._override()
        for host in self.hosts:
            server = str(host.backend.host or host.backend.name)
            readable = isinstance(host.backend, ShowsLoaded)
            capacity = stored.get(server)
            if capacity is None or capacity.readable != readable:
                capacity = Capacity(server, host.backend.name, readable)
            capacity.backend = host.backend.name
            capacity.override, capacity.override_by = override, by
            capacity.assumed = self.hosts.assumed(host)
            self.capacities[host.name] = capacity

    def capacity(self) -> int:
        """Models a server holds, for a plan made before playing (the least of the hosts';
        a server still to be learned counts as ollama's default on CPU)."""
        models = len(self.hosts.models())
        plans = [c.plan(models) for c in self.servers]
        return min(DEFAULT_MAX_LOADED if held is not None else n for n, held in plans)

    @property
    def servers(self) -> list[Capacity]:
        return list(self.capacities.values())

    def scheduling(self) -> list[str]:
        models = len(self.hosts.models())
        return [f"server {c.server}: {c.describe(models)}" for c in self.servers]

    async def run(self, ledger: Ledger) -> Outcome:
        reconciled = ledger.reconcile(self.settings.retry_errors)
        for result in reconciled.finalized:
            self.observer.recorded(result)
        judging = {game.id for game, _ in reconciled.to_judge}
        preload = [h.name for h in self.hosts if self.capacities[h.name].readable]
        scheduler: Scheduler[Game | Judging] = Scheduler(
            list(self.hosts.by_name), 1, preload=preload
        )
        for game in ledger.pending(self.settings.retry_errors):
            if game.id not in judging:
                scheduler.add(Work(game, models(self.tournament, game)))
        for game, transcript in reconciled.to_judge:
            self._add_judging(scheduler, game, transcript.path)
        for host in self.hosts:
            if host.name in preload:
                listed = await self._listing(host)
                if listed is not None:
                    scheduler.observe(host.name, listed)
            self._plan(scheduler, host)
        self._save()
        self.observer.scheduling(self.scheduling())
        done = len(ledger.games) - len(scheduler)
        errors = sum(1 for r in ledger.results.values() if r.status == "error")
        self.observer.planned(len(ledger.games), done, errors)
        running: dict[asyncio.Task[Any], tuple[Host, Work[Game | Judging]]] = {}
        try:
            await self._loop(ledger, scheduler, running)
        finally:
            await cancel_all(running)
            await self._release_all(scheduler)
            self._save()
        self.outcome.loads = sum(c.run_loads for c in self.capacities.values())
        self.outcome.servers = list(self.capacities.values())
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
        servers: dict[asyncio.Task[None], Host] = {}  # a load or a listing, one per host
        try:
            while True:
                self._fill(ledger, scheduler, running)
                await self._release_evicted(scheduler)
                self._ask_servers(scheduler, servers)
                waiting: set[asyncio.Task[Any]] = set(running) | probes | set(servers)
                if not waiting:
                    if len(scheduler):
                        raise RuntimeError("tournament scheduler stalled with work left")
                    return
                finished, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    if task in probes:
                        probes.discard(task)
                        continue
                    if task in servers:
                        del servers[task]
                        task.result()  # failures to answer are handled inside: this is a bug
                        continue
                    host, work = running.pop(task)
                    host.live -= 1
                    self.gates[host.name].leave()
                    scheduler.finished(host.name, work)
                    probe = await self._finished(ledger, scheduler, host, work, task)
                    if probe is not None:
                        probes.add(asyncio.create_task(probe))
                    if self.outcome.stopped:
                        return
        finally:
            await cancel_all(list(servers))

    def _fill(
        self,
        ledger: Ledger,
        scheduler: Scheduler[Game | Judging],
        running: dict[asyncio.Task[Any], tuple[Host, Work[Game | Judging]]],
    ) -> None:
        for host in self.hosts:
            gate = self.gates[host.name]
            while not host.paused and host.live < self._cap(scheduler, host):
                work = scheduler.next(host.name)
                gate.set_active(scheduler.hosts[host.name].swapping)
                if work is None:
                    break
                item = work.item
                coro: Awaitable[Any] = (
                    self.work.judge(item, host)
                    if isinstance(item, Judging)
                    else self.work.play(item, host, ledger, _Replies(self, scheduler, host))
                )
                task = asyncio.ensure_future(coro)
                running[task] = (host, work)
                host.live += 1
                gate.enter()

    @staticmethod
    def _cap(scheduler: Scheduler[Game | Judging], host: Host) -> int:
        """Games in play at once on ``host``: its connections', or on a server that swaps
        models per turn, as many as wait their model's turn (each load serves them all)."""
        return max(host.cap, SWAPPING_GAMES) if scheduler.hosts[host.name].swapping else host.cap

    # -- what the servers hold -----------------------------------------------------------

    def _ask_servers(
        self, scheduler: Scheduler[Game | Judging], servers: dict[asyncio.Task[None], Host]
    ) -> None:
        """Start a load the scheduler asks for, or a listing after a surprise, per host."""
        asking = {host.name for host in servers.values()}
        for host in self.hosts:
            if host.name in asking or host.paused:
                continue
            model = scheduler.start_load(host.name)
            if model is not None:
                servers[asyncio.create_task(self._load(scheduler, host, model))] = host
            elif host.name in self.relist:
                self.relist.discard(host.name)
                servers[asyncio.create_task(self._relisted(scheduler, host))] = host

    async def _listing(self, host: Host, loaded: str | None = None) -> set[str] | None:
        """Read what ``host``'s server holds and learn from it (``loaded``: the model just
        loaded); our models it holds, or None when it did not say."""
        found = await self._read(host)
        if found is None:
            return None
        return self.capacities[host.name].observe(found, self.hosts.ours(host), loaded=loaded)

    async def _read(self, host: Host) -> list[LoadedModel] | None:
        backend = host.backend
        capacity = self.capacities[host.name]
        if not capacity.readable:
            return None
        assert isinstance(backend, ShowsLoaded)
        try:
            return await backend.loaded_models()
        except BackendError as exc:
            log.warning("could not read the server's loaded models", error=str(exc))
            if not isinstance(exc, BackendUnavailable):
                # It answers, but not this (a proxy, an old server): schedule on without
                # residency knowledge rather than learning forever.
                capacity.readable = False
                self.observer.scheduling([f"server {capacity.server}: {capacity.describe()}"])
            return None

    async def _relisted(self, scheduler: Scheduler[Game | Judging], host: Host) -> None:
        listed = await self._listing(host)
        if listed is not None:
            scheduler.observe(host.name, listed)
            self._plan(scheduler, host)
            self._save()

    async def _load(self, scheduler: Scheduler[Game | Judging], host: Host, model: str) -> None:
        """Load ``model`` before the work that needs it starts, and learn from the listing."""
        capacity = self.capacities[host.name]
        here = scheduler.hosts[host.name]
        backend = host.backend
        assert isinstance(backend, ShowsLoaded)
        if here.held is not None and len(here.resident) >= max(here.held, 2):
            # Beyond what the server was seen to hold: if it must evict to make room, let
            # it evict the model the scheduler would have: ollama evicts the idle model
            # with the shortest keep-alive (this fake and others: the least recently used).
            listed = await self._listing(host)
            if listed is not None:
                scheduler.observe(host.name, listed)
            for i, other in enumerate(scheduler.expendable(host.name)):
                keep = EXPENDABLE_KEEP_ALIVE if i == 0 else None
                with contextlib.suppress(BackendError):
                    await backend.load_model(other, self.work.load_config(other, host, keep))
        try:
            await backend.load_model(model, self.work.load_config(model, host))
        except BackendError as exc:  # its games' first requests will load it, or fail
            log.warning("could not load a model ahead of its games", model=model, error=str(exc))
            scheduler.loaded(host.name, model, None)
            return
        listed = await self._listing(host, loaded=model)
        scheduler.loaded(host.name, model, listed)
        self._warn_override(capacity)
        self._plan(scheduler, host)
        self._save()

    def _warn_override(self, capacity: Capacity) -> None:
        if capacity.override is None or capacity.at_most is None or capacity.warned:
            return
        if capacity.at_most < capacity.override:
            capacity.warned = True
            log.warning(
                "the server holds fewer models than it is scheduled for",
                server=capacity.server,
                holds=capacity.at_most,
                max_loaded=capacity.override,
            )

    def _plan(self, scheduler: Scheduler[Game | Judging], host: Host) -> None:
        capacity, held = self.capacities[host.name].plan(len(self.hosts.models()))
        scheduler.set_capacity(host.name, capacity, held)

    def _save(self) -> None:
        write_learned(self.settings.out, self.capacities.values())

    def replied(
        self, scheduler: Scheduler[Game | Judging], host: Host, model: str, ms: float
    ) -> None:
        """A reply of ``host`` spent ``ms`` loading ``model``."""
        capacity = self.capacities[host.name]
        if not capacity.replied(ms, LOAD_MS) or not capacity.readable:
            return
        here = scheduler.hosts[host.name]
        if model in here.resident and not here.swapping:
            self.relist.add(host.name)  # evicted or expired since it was loaded: look again

    # -- results -------------------------------------------------------------------------

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
            self.capacities[host_name].released(model)
            await self.hosts.release(self.hosts[host_name], model)

    async def _release_all(self, scheduler: Scheduler[Game | Judging]) -> None:
        for host in self.hosts:
            for model in sorted(scheduler.hosts[host.name].resident):
                self.capacities[host.name].released(model)
                await self.hosts.release(host, model)
                scheduler.release(host.name, model)


class _Replies(Observer):
    """A game's replies on one host: how long each spent loading its model, as the
    server reports it (ollama's load_duration)."""

    def __init__(self, play: Play, scheduler: Scheduler[Game | Judging], host: Host) -> None:
        self.play, self.scheduler, self.host = play, scheduler, host

    def turn_finished(self, event: TurnFinished) -> None:
        record = event.record
        ms = record.server.get("load_ms")
        if ms is not None and not record.scripted:
            self.play.replied(self.scheduler, self.host, record.model, ms)


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


async def check(tournament: Tournament, settings: PlaySettings) -> tuple[int, list[str]]:
    """Bind backends and check every model (entrants' and judge's) without playing; the
    number of models a server holds at once, for the plan, and how each is scheduled."""
    async with BackendPool(replace(settings.run, out_dir=settings.out / GAMES)) as pool:
        game = Play(tournament, settings, pool, TournamentObserver())
        await game.connect()
        lines = game.scheduling()
        capacity = game.capacity()
        models = len(game.hosts.models())
        if any(c.plan(models)[1] is not None for c in game.servers):
            lines.append(f"the plan assumes {capacity} model(s) at once until that is learned")
        return capacity, lines
