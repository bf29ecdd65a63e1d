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
import contextlib
import random
import secrets
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from agents.agent import Agent
from agents.backends.base import Backend, ModelInfo
from agents.errors import ConfigError, ModelNotFound
from runner.conversation import Conversation, Result
from runner.events import Observer
from runner.plan import Plan
from runner.pool import BackendPool, Binding
from runner.scenario import ResolvedScenario
from runner.settings import RunSettings
from runner.tournament.games import Game, game_scenario, models
from runner.tournament.judge import judge_game
from runner.tournament.ledger import GAMES, Ledger, ResultRecord, result_from
from runner.tournament.schedule import Scheduler, Work
from runner.tournament.spec import Tournament
from runner.transcript import TranscriptWriter, read_transcript

log = structlog.get_logger("sparring.tournament")

DEFAULT_MAX_LOADED = 3  # ollama's OLLAMA_MAX_LOADED_MODELS on CPU
KEEP_ALIVE = "30m"  # holds a block's models between its requests; released explicitly
PROBE_CAP = 60.0  # longest wait between probes of a server that is down


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


@dataclass(slots=True)
class Judging:
    game: Game
    transcript: Path


@dataclass(slots=True)
class Host:
    name: str  # "" for the backend's default address
    backend: Backend
    bindings: dict[str, Binding] = field(default_factory=dict)  # model -> binding
    live: int = 0
    cap: int = 1
    paused: bool = False


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
        self.run_settings = replace(settings.run, out_dir=settings.out / GAMES)
        self.pool = pool
        self.observer = observer
        self.run_id = secrets.token_hex(6)
        self.hosts: dict[str, Host] = {}
        self.infos: dict[tuple[int, str], ModelInfo] = {}
        self.errors = 0
        self.outcome = Outcome()

    # -- set-up ----------------------------------------------------------------------------

    def _all_models(self) -> list[str]:
        names = {e.model for e in self.tournament.entrants}
        if self.tournament.judge is not None:
            names.add(self.tournament.judge.model)
        return sorted(names)

    async def connect(self) -> None:
        """Bind a backend per host and check (or pull) every model on it."""
        hosts = self.settings.run.hosts or self.tournament.hosts or ("",)
        scenario = self.tournament.scenario
        for name in hosts:
            host_tuple = (name,) if name else None
            bindings = {}
            for model in self._all_models():
                agent = Agent(name="entrant", model=model)
                bindings[model] = await self.pool.bind(scenario, agent, host_tuple)
            backend = next(iter(bindings.values())).backend
            self.hosts[name] = Host(name, backend, bindings)
        await self._preflight()
        for host in self.hosts.values():
            per_slot = getattr(host.backend, "conversations_per_slot", 2)
            host.cap = self.pool.slots(host.backend) * per_slot

    async def _preflight(self) -> None:
        problems = []
        for host in self.hosts.values():
            backend = host.backend
            for model in self._all_models():
                try:
                    self.infos[(id(backend), model)] = await backend.find_model(model)
                    continue
                except ModelNotFound as exc:
                    if not (self.settings.run.pull and backend.can_pull):
                        hint = f"; {exc.hint}" if exc.hint else ""
                        role = "judge" if self._is_judge(model) else "entrant"
                        where = f"{backend.name} at {backend.host}"
                        problems.append(f"{where}: {role} model {model!r} not found{hint}")
                        continue
                await backend.pull(model, lambda *_: None)
                self.infos[(id(backend), model)] = await backend.find_model(model)
        if problems:
            raise ConfigError(problems)

    def _is_judge(self, model: str) -> bool:
        judge = self.tournament.judge
        return (
            judge is not None
            and judge.model == model
            and all(e.model != model for e in self.tournament.entrants)
        )

    def capacity(self) -> int:
        if self.settings.max_loaded:
            return self.settings.max_loaded
        if self.tournament.max_loaded:
            return self.tournament.max_loaded
        backend = next(iter(self.hosts.values())).backend
        if backend.name == "openai":  # the server serves what it was started with
            return max(len(self._all_models()), 1)
        return DEFAULT_MAX_LOADED

    # -- building work ---------------------------------------------------------------------

    def _scenario(self, game: Game, host: Host) -> ResolvedScenario:
        scenario = game_scenario(self.tournament, game)
        if "keep_alive" not in host.backend.supported_options:
            return scenario
        # Hold the block's models between requests; the scheduler unloads them itself.
        agents = tuple(
            replace(a, options=a.options.model_copy(update={"keep_alive": KEEP_ALIVE}))
            for a in scenario.agents
        )
        return replace(scenario, agents=agents)

    def _plan(self, game: Game, host: Host, ledger: Ledger) -> Plan:
        scenario = self._scenario(game, host)
        bindings = {a.name: host.bindings[a.model] for a in scenario.agents}
        return Plan(
            scenario=scenario,
            repeat_index=game.number,
            seed=game.seed,
            base_seed=self.tournament.seed,
            bindings=bindings,
            stem=ledger.transcript_stem(game),
            labels={
                "tournament": self.tournament.name,
                "tournament_hash": self.tournament.hash,
                "game_id": game.id,
            },
        )

    async def _play_game(self, game: Game, host: Host, ledger: Ledger) -> Result:
        conversation = Conversation(
            self._plan(game, host, ledger),
            self.pool,
            self.run_settings,
            run_id=self.run_id,
            observer=self.observer,
            model_infos=self.infos,
        )
        return await conversation.run()

    async def _judge(self, judging: Judging, host: Host) -> Path:
        judge = self.tournament.judge
        assert judge is not None
        transcript = read_transcript(judging.transcript)
        have = {v.order for v in transcript.verdicts}
        missing = [o for o in ("as_seated", "swapped") if o not in have]
        options = judge.options
        if "keep_alive" in host.backend.supported_options:
            options = options.model_copy(update={"keep_alive": KEEP_ALIVE})
        backend = host.bindings[judge.model].backend
        verdicts = await judge_game(
            backend,
            replace(judge, options=options),
            transcript,
            seed=judging.game.seed,
            timeouts=self.run_settings.timeouts,
            retry=self.run_settings.retry,
            limit=self.pool.limit(backend, judge.model),
            orders=missing,  # type: ignore[arg-type]
        )
        writer = TranscriptWriter.append(judging.transcript)
        try:
            for verdict in verdicts:
                writer.write(verdict)
        finally:
            writer.close()
        return judging.transcript

    # -- the loop --------------------------------------------------------------------------

    async def run(self, ledger: Ledger) -> Outcome:
        reconciled = ledger.reconcile(self.settings.retry_errors)
        for result in reconciled.finalized:
            self.observer.recorded(result)
        judging = {game.id for game, _ in reconciled.to_judge}
        scheduler: Scheduler[Game | Judging] = Scheduler(list(self.hosts), self.capacity())
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
            for task in running:
                task.cancel()
            if running:
                with contextlib.suppress(Exception):
                    await asyncio.gather(*running, return_exceptions=True)
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
        for host in self.hosts.values():
            while not host.paused and host.live < host.cap:
                work = scheduler.next(host.name)
                if work is None:
                    break
                item = work.item
                coro: Awaitable[Any] = (
                    self._judge(item, host)
                    if isinstance(item, Judging)
                    else self._play_game(item, host, ledger)
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
            return self._probe(host, error.message)
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

    async def _probe(self, host: Host, message: str) -> None:
        """Pause ``host`` and ask it for its models, backing off, until it answers."""
        if host.paused:
            return
        host.paused = True
        wait = 1.0
        try:
            while True:
                self.observer.paused(host.name or str(host.backend.host), message, wait)
                log.warning("server down: pausing", host=host.backend.host, retry_in_s=wait)
                await asyncio.sleep(wait)
                try:
                    await host.backend.list_models()
                except Exception as exc:  # any failure to answer means: still down
                    message = str(exc)
                    wait = min(PROBE_CAP, wait * 2) * random.uniform(0.8, 1.0)
                    continue
                log.warning("server back: resuming", host=host.backend.host)
                self.observer.resumed(host.name or str(host.backend.host))
                return
        finally:
            host.paused = False

    async def _release_evicted(self, scheduler: Scheduler[Game | Judging]) -> None:
        for host_name, model in scheduler.take_evictions():
            await self._release(self.hosts[host_name], model)

    async def _release_all(self, scheduler: Scheduler[Game | Judging]) -> None:
        for host in self.hosts.values():
            for model in sorted(scheduler.hosts[host.name].resident):
                await self._release(host, model)
                scheduler.release(host.name, model)

    async def _release(self, host: Host, model: str) -> None:
        try:
            await host.bindings[model].backend.release(model)
        except Exception as exc:  # unloading is a courtesy: never fail the tournament on it
            log.warning("could not unload a model", model=model, error=str(exc))


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
