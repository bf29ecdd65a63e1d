"""The embedded engine's engines: a loaded model, its queue, and the thread that drives it.

Each loaded model (one per GGUF file, context size and chat format) is an *engine*: a
:mod:`~agents.backends.local.worker` that holds the model (a worker process by default),
and one thread in sparring's process that feeds it requests one at a time, in the order
:mod:`agents.backends.local.queue` chooses, and relays its text to the event loop through an
``asyncio.Queue`` fed with ``call_soon_threadsafe``. Engines are shared by every
:class:`~agents.backends.local.backend.LocalBackend` of the process, because a model
instance holds one KV cache and cannot serve two generations at once. When a reader goes
away, its job's stop flag ends generation at the next token.

**A worker that dies** (a crash inside llama.cpp, an abort, an out-of-memory kill) fails
the one request it was serving with a retryable :class:`~agents.errors.EngineCrashed`
naming the model and the signal; the next request starts a new worker, whose contexts
start cold (replies stay the same: a cold read gives the same numbers). After
``MAX_DEATHS`` deaths in a row with no reply between them, the engine stops the model:
every request gets :class:`~agents.errors.EngineFailed`, a final error.

Engines are reference-counted: :func:`acquire` loads (or shares) one, :func:`release`
frees it when its last user lets go. Saved contexts of every engine share one memory
budget, split evenly between the engines loaded.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from agents.backends.local.context import Source
from agents.backends.local.core import (
    HOST,
    INSTALL_HINT,
    NAME,
    Cancelled,
    Counters,
    Failed,
    Report,
    Spec,
    outcome_of,
)
from agents.backends.local.queue import JobQueue
from agents.backends.local.states import default_budget
from agents.backends.local.worker import FAULT_ENV, Host, InProcess, Load, WorkerProcess
from agents.errors import BackendError, ConfigError, EngineCrashed, EngineFailed

__all__ = ["HOST", "INSTALL_HINT", "NAME", "Engine", "Job", "acquire", "release"]

THREADS_ENV = "SPARRING_LOCAL_THREADS"
IN_PROCESS_ENV = "SPARRING_LOCAL_IN_PROCESS"
# Worker deaths in a row, with no reply between them, after which a model is stopped.
MAX_DEATHS = 3

log = structlog.get_logger("sparring.local")


def default_threads() -> int:
    """Every core this process may use but one, and at least one.

    llama.cpp's threads wait for each other at every step of a token, so one of them
    losing its core (to the event loop streaming the reply, or to anything else running)
    stalls them all; on 2 cores, two threads generated several times slower than one as
    soon as anything else ran. The thread count does not change the numbers.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def threads_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``SPARRING_LOCAL_THREADS`` if set, else :func:`default_threads`."""
    raw = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
    if not raw:
        return default_threads()
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{THREADS_ENV}={raw!r}: expected a whole number of threads, 1 or more")
    return int(raw)


def in_process_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``SPARRING_LOCAL_IN_PROCESS`` asks for models in sparring's own process."""
    raw = (os.environ if environ is None else environ).get(IN_PROCESS_ENV, "").strip().lower()
    if raw in ("", "0", "no", "false"):
        return False
    if raw in ("1", "yes", "true"):
        return True
    raise ConfigError(f"{IN_PROCESS_ENV}={raw!r}: expected 1 or 0")


class StopFlag:
    """A job's stop flag; setting it also tells the worker running the job, at once."""

    __slots__ = ("_event", "_hook")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._hook: Callable[[], None] | None = None

    def set(self) -> None:
        self._event.set()
        hook = self._hook
        if hook is not None:
            hook()

    def is_set(self) -> bool:
        return self._event.is_set()

    def forward(self, hook: Callable[[], None] | None) -> None:
        """Call ``hook`` when the flag is set (now, if it already is); None to stop."""
        self._hook = hook
        if hook is not None and self._event.is_set():
            hook()


@dataclass(eq=False)
class Job:
    """One generation, as the engine's thread sees it."""

    messages: list[dict[str, str]]
    kwargs: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[str, Any]]
    model: str
    session: str | None = None
    stop: StopFlag = field(default_factory=StopFlag)
    # How the side's context was found, and the prompt tokens it kept (set when done).
    source: Source | None = None
    reused: int = 0

    def emit(self, kind: str, payload: Any = None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, payload))
        except RuntimeError:  # the loop is closed: nobody will read
            self.stop.set()

    @property
    def outcome(self) -> str | None:
        """``hit``, ``miss`` or ``new`` for a request with a session; None without one."""
        return outcome_of(self.source, self.reused)


@dataclass(frozen=True, slots=True)
class EngineStats:
    jobs: int
    cancelled: int
    tokens: int  # tokens of finished replies
    sampled: int  # every token sampled, cancelled jobs' included
    contexts: dict[str, int]  # finished replies by outcome: hit, miss, new
    reused: int  # prompt tokens not evaluated again, over finished replies
    evaluated: int  # prompt tokens evaluated, over finished replies
    deaths: int  # worker processes that died
    workers: int  # worker processes started
    pid: int | None  # the live worker's process id (None in-process or between workers)


class Engine:
    """A loaded model, its queue and the single thread that drives it."""

    def __init__(
        self, path: Path, n_ctx: int, chat_format: str | None, in_process: bool = False
    ) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.chat_format = chat_format
        self.in_process = in_process
        self.load_ms: float | None = None
        self.counters = Counters()
        self._budget = 0
        self._host: Host | None = None
        self._workers = 0
        self._deaths_in_a_row = 0
        self._failed: EngineFailed | None = None
        self._load_error: BaseException | None = None
        self._current: Job | None = None  # the job the thread has taken
        self._ids = itertools.count()
        self._closed = False
        self._queue: JobQueue[Job] = JobQueue()
        self.loaded: concurrent.futures.Future[None] = concurrent.futures.Future()
        # Running from the start, so a waiter that is cancelled (a timeout, Ctrl-C) cannot
        # cancel the load for every other waiter and kill the thread with it.
        self.loaded.set_running_or_notify_cancel()
        # Daemon, so a process that forgets to close an engine still exits (see atexit).
        self._thread = threading.Thread(
            target=self._work, name=f"sparring-local-{path.stem[:24]}", daemon=True
        )

    def start(self, budget: int) -> None:
        self._budget = budget
        self._thread.start()

    def stats(self) -> EngineStats:
        c = self.counters
        host = self._host
        return EngineStats(
            c.jobs,
            c.cancelled,
            c.tokens,
            c.sampled,
            dict(c.outcomes),
            c.reused,
            c.evaluated,
            c.deaths,
            self._workers,
            host.pid if isinstance(host, WorkerProcess) else None,
        )

    def set_budget(self, budget: int) -> None:
        self._budget = budget
        host = self._host
        if host is not None:
            host.set_budget(budget)

    # -- the engine's thread -------------------------------------------------------------

    def _work(self) -> None:
        # Loading is the thread's first task, so requests simply queue behind it.
        try:
            self._start_host()
            self.loaded.set_result(None)
        except BaseException as exc:
            self._load_error = exc
            self.loaded.set_exception(exc)
        while True:
            host = self._host
            job = self._queue.take(host.resident if host is not None else None)
            if job is None:
                break
            self._current = job
            try:
                self._run(job)
            except Exception as exc:  # a bug here must not strand the job's reader
                job.emit("error", exc)
            finally:
                self._current = None
        if self._host is not None:
            self._host.close()
            self._host = None

    def _start_host(self) -> None:
        load = Load(
            path=str(self.path),
            n_ctx=self.n_ctx,
            chat_format=self.chat_format,
            threads=_threads,
            budget=self._budget,
            generation=self._workers,
            fault=os.environ.get(FAULT_ENV) or None,
        )
        t0 = time.perf_counter()
        self._workers += 1
        if self.in_process:
            self._host = InProcess(load)
        else:
            worker = _take_spare() or WorkerProcess()
            try:
                worker.load(load)
            except EngineCrashed as exc:
                self._died(worker, "loading")
                exc.message += f" while loading {self.path.name}"
                raise
            except BaseException:
                worker.close()
                raise
            self._host = worker
        self.load_ms = (time.perf_counter() - t0) * 1000

    def _died(self, worker: WorkerProcess, doing: str) -> None:
        self._host = None
        self.counters.deaths += 1
        self._deaths_in_a_row += 1
        death = worker.last_death
        last_words = {"stderr": death.last_words} if death and death.last_words else {}
        log.warning(
            "engine worker died",
            model=self.path.name,
            cause=death.cause if death else None,
            doing=doing,
            deaths_in_a_row=self._deaths_in_a_row,
            **last_words,
        )
        if self._deaths_in_a_row >= MAX_DEATHS and self._failed is None:
            cause = death.cause if death else "died"
            self._failed = EngineFailed(
                f"the engine worker {cause} {self._deaths_in_a_row} times in a row; "
                "this model is stopped for the rest of the run",
                backend=NAME,
                host=HOST,
                hint="scripts/setup.sh checks the engine and rebuilds it for this machine",
            )

    def _run(self, job: Job) -> None:
        # Set before this check, as close() sets _closed before it stops queued jobs: a job
        # taken while the engine closes is stopped by one side or the other.
        if job.stop.is_set() or self._closed:
            job.emit("cancelled")
            return
        refusal = self._failed or self._load_error
        if refusal is not None:
            job.emit("error", _for(refusal, job.model))
            return
        if self._host is None or (isinstance(self._host, WorkerProcess) and not self._host.alive()):
            if isinstance(self._host, WorkerProcess):
                self._host.death()
                self._died(self._host, "waiting")
            try:
                self._start_host()
            except BackendError as exc:
                job.emit("error", _for(self._failed or exc, job.model))
                return
        host = self._host
        assert host is not None
        self.counters.jobs += 1
        spec = Spec(next(self._ids), job.messages, job.kwargs, job.session)
        job.stop.forward(lambda: host.stop(spec.id))
        try:
            report = host.serve(spec, lambda text: job.emit("delta", text), job.stop.is_set)
        except Cancelled as exc:
            self.counters.cancelled += 1
            self.counters.sampled += exc.sampled
            job.emit("cancelled")
        except Failed as exc:
            self.counters.sampled += exc.sampled
            self._deaths_in_a_row = 0  # the worker answered
            job.emit("error", _for(exc.error, job.model))
        except EngineCrashed as exc:
            assert isinstance(host, WorkerProcess)
            self._died(host, "generating")
            exc.message += "; a new worker starts for the next request"
            job.emit("error", _for(exc, job.model))
        else:
            self._deaths_in_a_row = 0
            self._finished(job, report)
        finally:
            job.stop.forward(None)

    def _finished(self, job: Job, report: Report) -> None:
        self.counters.finished(report)
        job.source, job.reused = report.source, report.reused
        job.emit("final", report.final)

    # -- any thread ----------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job``; RuntimeError once the engine is closed."""
        self._queue.put(job, job.session)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        # Queued jobs still run, but see their stop flag at once and tell their readers.
        for job in self._queue.close():
            job.stop.set()
        current = self._current
        if current is not None:
            current.stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join()


def _for(error: BaseException, model: str) -> BaseException:
    """``error`` naming the model as the request did."""
    if isinstance(error, BackendError):
        error.model = model
    return error


# The budget of every engine's saved contexts, split between the engines loaded, and the
# threads models loaded from now on use: set by LocalBackend from the environment.
_budget = default_budget()
_threads = default_threads()


# A worker started ahead of the first load, its imports done while the run starts.
_spare: WorkerProcess | None = None
_SPARE_LOCK = threading.Lock()


def prewarm() -> None:
    """Start a spare worker now, so the first model's load does not wait for its start."""
    global _spare
    with _SPARE_LOCK:
        if _spare is None or not _spare.alive():
            _spare = WorkerProcess()


def _take_spare() -> WorkerProcess | None:
    global _spare
    with _SPARE_LOCK:
        spare, _spare = _spare, None
    if spare is not None and not spare.alive():
        spare.death()
        return None
    return spare


def configure(*, state_budget: int, threads: int) -> None:
    """Bound every model's saved contexts to ``state_budget`` bytes in all (evicting to
    fit), and load models from now on with ``threads`` threads."""
    global _budget, _threads
    _budget, _threads = state_budget, threads
    with _ENGINES_LOCK:
        _rebalance()


def budget() -> int:
    """The saved-context budget of every engine together, in bytes."""
    return _budget


def threads() -> int:
    """The threads a model loaded now would use."""
    return _threads


# (GGUF path, context size, chat format, in sparring's own process)
EngineKey = tuple[str, int, str | None, bool]

_ENGINES: dict[EngineKey, Engine] = {}
_USERS: dict[EngineKey, int] = {}
_ENGINES_LOCK = threading.Lock()


def _share() -> int:
    return _budget // max(1, len(_ENGINES))


def _rebalance() -> None:
    share = _share()
    for engine in _ENGINES.values():
        engine.set_budget(share)


def _key(engine: Engine) -> EngineKey:
    return (str(engine.path), engine.n_ctx, engine.chat_format, engine.in_process)


def acquire(path: Path, n_ctx: int, chat_format: str | None, in_process: bool = False) -> Engine:
    """The engine for this model, loading it if nobody has (in a worker process unless
    ``in_process``); pair with :func:`release`."""
    key = (str(path), n_ctx, chat_format, in_process)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = Engine(path, n_ctx, chat_format, in_process)
            _rebalance()  # before it loads: the new engine starts with its share
            engine.start(_share())
        _USERS[key] = _USERS.get(key, 0) + 1
        return engine


def release(engine: Engine) -> None:
    """Let go of one use of ``engine``; the last one unloads the model (blocking)."""
    key = _key(engine)
    with _ENGINES_LOCK:
        if _ENGINES.get(key) is not engine:
            return  # already unloaded
        _USERS[key] -= 1
        if _USERS[key] > 0:
            return
        del _ENGINES[key], _USERS[key]
        _rebalance()
    engine.close()


def loaded_engines() -> dict[EngineKey, EngineStats]:
    """What is loaded, with counters (for tests and the bench)."""
    with _ENGINES_LOCK:
        return {key: engine.stats() for key, engine in _ENGINES.items()}


@atexit.register
def unload_all() -> None:
    """Free every loaded model at once, whoever uses it; running generations stop first."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
        _USERS.clear()
    for engine in engines:
        engine.close()
    spare = _take_spare()
    if spare is not None:
        spare.close()
