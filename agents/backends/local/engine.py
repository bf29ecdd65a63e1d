"""The embedded engine's worker: a loaded GGUF model and the one thread that may touch it.

Each loaded model (one per GGUF file, context size and chat format) is an *engine*: a
``llama_cpp.Llama`` plus one worker thread that owns it. Engines are shared by every
:class:`agents.backends.local.LocalBackend` of the process, because a model instance holds
one KV cache and cannot serve two generations at once: requests for the same model queue
for its thread, in the order :mod:`agents.backends.local.queue` chooses. Tokens travel back
to the event loop through an ``asyncio.Queue`` fed with ``call_soon_threadsafe``; when the
consumer goes away, a stop flag ends generation at the next token.

A request naming a session (one agent's side of one conversation) evaluates only what its
prompt adds to that side's previous one: :mod:`agents.backends.local.context` keeps the
context between turns, and saved contexts wait in one process-wide
:class:`~agents.backends.local.states.StateStore` within a memory budget.

Engines are reference-counted: :func:`acquire` loads (or shares) one, :func:`release`
frees it when its last user lets go, so a backend closing its engines never pulls a model
from under another backend still using it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import io
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.backends.base import Final
from agents.backends.local.context import HITS, ContextError, SessionContext, Source
from agents.backends.local.queue import JobQueue
from agents.backends.local.states import StateStore, default_budget
from agents.errors import BackendError, BadRequest, ConfigError, EngineMissing, ServerError

NAME = "local"
HOST = "embedded"
INSTALL_HINT = (
    "the embedded engine is not installed: pip install 'sparring[local]' "
    "(compiles llama.cpp, about 10 minutes on 2 cores the first time)"
)
_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")
THREADS_ENV = "SPARRING_LOCAL_THREADS"


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


_QUIET: Any = None
# sys.stderr is process-wide: loads swap it one at a time.
_LOAD_LOCK = threading.Lock()


def _silence(llama_cpp: Any) -> None:
    """Route llama.cpp's log lines nowhere.

    llama-cpp-python's own callback filters by level but still lets warnings through
    (Gemma 3's "using full-size SWA cache"), late and mixed into our display; failures
    reach us as exceptions anyway.
    """
    global _QUIET
    if _QUIET is not None:
        return

    @llama_cpp.llama_log_callback
    def quiet(level: int, text: bytes, user_data: Any) -> None:
        pass

    _QUIET = quiet  # ctypes needs the callback kept alive
    llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))


class _Cancelled(Exception):
    """Raised inside the worker to abandon a generation nobody is reading any more."""


@dataclass(eq=False)
class Job:
    """One generation, as the worker thread sees it."""

    messages: list[dict[str, str]]
    kwargs: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[str, Any]]
    model: str
    session: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int | None = None
    sampled: int = 0
    last_token: int | None = None
    first_sample_at: float | None = None
    prompt_read: bool = False
    source: Source | None = None  # how the side's context was found
    reused: int = 0  # prompt tokens whose cells were kept, not evaluated
    swap_ms: float = 0.0  # saving the loaded context and restoring this side's

    def emit(self, kind: str, payload: Any = None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, payload))
        except RuntimeError:  # the loop is closed: nobody will read
            self.stop.set()

    @property
    def outcome(self) -> str | None:
        """``hit``, ``miss`` or ``new`` for a request with a session; None without one."""
        if self.source is None:
            return None
        if self.source in HITS:
            return "hit" if self.reused else "miss"  # kept, but the prompt did not extend it
        return "new" if self.source == "new" else "miss"


@dataclass(frozen=True, slots=True)
class EngineStats:
    jobs: int
    cancelled: int
    tokens: int  # tokens of finished replies
    sampled: int  # every token sampled, cancelled jobs' included
    contexts: dict[str, int]  # finished replies by outcome: hit, miss, new
    reused: int  # prompt tokens not evaluated again, over finished replies
    evaluated: int  # prompt tokens evaluated, over finished replies


@dataclass(slots=True)
class _Counters:
    jobs: int = 0
    cancelled: int = 0
    tokens: int = 0
    sampled: int = 0
    reused: int = 0
    evaluated: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def finished(self, job: Job, completion: int) -> None:
        self.tokens += completion
        if job.outcome is not None:
            self.outcomes[job.outcome] += 1
        self.reused += job.reused
        self.evaluated += (job.prompt_tokens or 0) - job.reused

    def snapshot(self) -> EngineStats:
        return EngineStats(
            self.jobs,
            self.cancelled,
            self.tokens,
            self.sampled,
            dict(self.outcomes),
            self.reused,
            self.evaluated,
        )


@dataclass(frozen=True, slots=True)
class _Loaded:
    llm: Any
    context: SessionContext
    is_eog: Callable[[int], bool]


class Engine:
    """A loaded model and the single thread that may touch it."""

    def __init__(self, path: Path, n_ctx: int, chat_format: str | None) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.chat_format = chat_format
        self.load_ms: float | None = None
        self.counters = _Counters()
        self._model: _Loaded | None = None
        self._current: Job | None = None  # the job the worker has taken, hooks included
        self._closed = False
        self._queue: JobQueue[Job] = JobQueue()
        self.loaded: concurrent.futures.Future[None] = concurrent.futures.Future()
        # Running from the start, so a waiter that is cancelled (a timeout, Ctrl-C) cannot
        # cancel the load for every other waiter and kill the worker with it.
        self.loaded.set_running_or_notify_cancel()
        # Daemon, so a process that forgets to close an engine still exits (see atexit below).
        self._thread = threading.Thread(
            target=self._work, name=f"sparring-local-{path.stem[:24]}", daemon=True
        )
        self._thread.start()

    def stats(self) -> EngineStats:
        return self.counters.snapshot()

    # -- worker thread ---------------------------------------------------------------

    def _work(self) -> None:
        # Loading is the thread's first task, so requests simply queue behind it.
        try:
            t0 = time.perf_counter()
            self._model = _load(self, self.path, self.n_ctx, self.chat_format)
            self.load_ms = (time.perf_counter() - t0) * 1000
            self.loaded.set_result(None)
        except BaseException as exc:
            self.loaded.set_exception(exc)
        while True:
            resident = self._model.context.session if self._model else None
            job = self._queue.take(resident)
            if job is None:
                return
            self._current = job
            try:
                self._run(job)
            finally:
                self._current = None

    def _run(self, job: Job) -> None:
        model = self._model
        # _current is set before this check, and close() sets _closed before it reads
        # _current: a job taken while the engine closes is stopped by one side or the other.
        if job.stop.is_set() or model is None or self._closed:
            job.emit("cancelled")
            return
        self.counters.jobs += 1
        t0 = time.perf_counter()
        try:
            swapped = model.context.swap_ms
            job.source = model.context.switch_to(job.session)
            job.swap_ms = model.context.swap_ms - swapped
            model.llm.n_tokens = 0  # the eval hook, not llama-cpp-python, decides what to reuse
            try:
                finish = _stream(model.llm, job)
            finally:
                model.context.settle()  # the reply's cells belong to the side's context too
            final = _final(job, t0, finish, model.is_eog)
            self.counters.finished(job, final.completion_tokens or 0)
            job.emit("final", final)
        except _Cancelled:
            self.counters.cancelled += 1
            job.emit("cancelled")
        except BackendError as exc:
            job.emit("error", exc)
        except ValueError as exc:  # llama-cpp-python's word for a request it cannot serve
            job.emit("error", _bad_request(exc, job.model))
        except RuntimeError as exc:  # llama.cpp itself failed (llama_decode returned ...)
            model.context.drop()  # its cells are in no known state
            what = "keep a conversation's context" if isinstance(exc, ContextError) else "run"
            error = ServerError(
                f"llama.cpp failed to {what}: {exc}", backend=NAME, host=HOST, model=job.model
            )
            error.__cause__ = exc
            job.emit("error", error)
        except Exception as exc:  # anything else is a bug: the reader raises it unchanged
            job.emit("error", exc)

    # -- hooks, called by llama-cpp-python on the worker thread ----------------------

    def before_sample(self, llm: Any) -> Job | None:
        job = self._current
        if job is not None:
            if job.stop.is_set():
                raise _Cancelled
            if job.prompt_tokens is None:
                job.prompt_tokens = int(llm.n_tokens)
                job.first_sample_at = time.perf_counter()
        return job

    def after_sample(self, job: Job | None, token: int) -> None:
        self.counters.sampled += 1
        if job is not None:
            job.sampled += 1
            job.last_token = token

    def read_prompt(self, tokens: Sequence[int], evaluate: Callable[[Sequence[int]], None]) -> None:
        """Evaluate a job's prompt (its first eval call) through its side's context."""
        job, model = self._current, self._model
        if job is None or job.prompt_read or model is None:
            evaluate(tokens)
            return
        job.prompt_read = True
        try:
            job.reused = model.context.evaluate(tokens, job.stop.is_set)
        except InterruptedError:
            raise _Cancelled from None

    # -- any thread --------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job``; RuntimeError once the engine is closed."""
        self._queue.put(job, job.session)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        # Queued jobs still run, but see their stop flag at once and tell their readers.
        for job in [*self._queue.close(), self._current]:
            if job is not None:
                job.stop.set()
        self._thread.join()
        model, self._model = self._model, None
        STATES.forget_owner(self)
        if model is not None:
            model.llm.close()


def _load(engine: Engine, path: Path, n_ctx: int, chat_format: str | None) -> _Loaded:
    try:
        import llama_cpp
    except ImportError as exc:
        raise EngineMissing(INSTALL_HINT, backend=NAME, host=HOST) from exc
    _silence(llama_cpp)
    try:
        # Not verbose=False: that points the process's stdout and stderr file descriptors
        # at /dev/null while loading, and two loads on two threads can leave them there
        # for good (a simultaneous round loading two models lost all further output).
        # llama.cpp's own log lines already go to the silent callback; the library's
        # Python-level prints during loading go to a buffer, and then it is told to stop.
        with _LOAD_LOCK, contextlib.redirect_stderr(io.StringIO()):
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=_threads,
                verbose=True,
                chat_format=chat_format,
            )
        llm.verbose = False
    except ValueError as exc:
        raise BadRequest(
            f"llama.cpp could not load {path} (not a GGUF model it supports?): {exc}",
            backend=NAME,
            host=HOST,
        ) from exc
    vocab = llm._model.vocab

    def is_eog(token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(vocab, token))

    # Every token goes through Llama.sample: the one place to count tokens exactly, learn
    # the evaluated prompt length, and stop as soon as the reader has gone. A job's first
    # Llama.eval is its prompt, which its side's context evaluates (reusing what it can).
    original_sample, original_eval = llm.sample, llm.eval

    def sample(*args: Any, **kwargs: Any) -> int:
        job = engine.before_sample(llm)
        token = int(original_sample(*args, **kwargs))
        engine.after_sample(job, token)
        return token

    def evaluate(tokens: Sequence[int]) -> None:
        engine.read_prompt(tokens, original_eval)

    llm.sample = sample  # type: ignore[method-assign]  # per-instance hooks, on purpose
    llm.eval = evaluate  # type: ignore[method-assign]
    context = SessionContext(llm, STATES, engine, original_eval)
    return _Loaded(llm, context, is_eog)


def _final(job: Job, t0: float, finish: str | None, is_eog: Callable[[int], bool]) -> Final:
    end = time.perf_counter()
    completion = job.sampled
    if job.last_token is not None and is_eog(job.last_token):
        completion -= 1  # the end-of-turn token is sampled but not part of the reply
    first = job.first_sample_at or end
    server = {
        "total_ms": (end - t0) * 1000,
        "prompt_eval_ms": (first - t0) * 1000,
        "eval_ms": (end - first) * 1000,
    }
    if job.source is not None:
        server["context_ms"] = job.swap_ms
        server["prompt_cached_tokens"] = float(job.reused)
    return Final(
        prompt_tokens=job.prompt_tokens,
        completion_tokens=completion,
        done_reason=finish or "stop",
        server=server,
        host=HOST,
    )


def _stream(llm: Any, job: Job) -> str | None:
    """Run the completion, sending its text to the reader; returns the finish reason."""
    stream = llm.create_chat_completion(messages=job.messages, stream=True, **job.kwargs)
    finish: str | None = None
    try:
        for chunk in stream:
            choice = chunk["choices"][0]
            text = choice.get("delta", {}).get("content")
            if text:
                job.emit("delta", text)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            if job.stop.is_set():
                raise _Cancelled
    finally:
        stream.close()
    return finish


def _bad_request(exc: ValueError, model: str) -> BadRequest:
    match = _OVERFLOW.search(str(exc))
    if match:
        message = (
            f"the prompt is {match[1]} tokens, more than the context window "
            f"(num_ctx={match[2]}); raise num_ctx or shorten the conversation"
        )
    else:
        message = str(exc)
    error = BadRequest(message, backend=NAME, host=HOST, model=model)
    error.__cause__ = exc
    return error


# Saved contexts of every loaded model, within one budget, and the threads a model loaded
# from now on uses: process-wide, set by LocalBackend from the environment.
STATES = StateStore(default_budget())
_threads = default_threads()


def configure(*, state_budget: int, threads: int) -> None:
    """Bound every model's saved contexts to ``state_budget`` bytes (evicting to fit), and
    load models from now on with ``threads`` threads."""
    global _threads
    STATES.budget = state_budget
    _threads = threads


def threads() -> int:
    """The threads a model loaded now would use."""
    return _threads


EngineKey = tuple[str, int, str | None]  # (GGUF path, context size, chat format)

_ENGINES: dict[EngineKey, Engine] = {}
_USERS: dict[EngineKey, int] = {}
_ENGINES_LOCK = threading.Lock()


def _key(engine: Engine) -> EngineKey:
    return (str(engine.path), engine.n_ctx, engine.chat_format)


def acquire(path: Path, n_ctx: int, chat_format: str | None) -> Engine:
    """The engine for this model, loading it if nobody has; pair with :func:`release`."""
    key = (str(path), n_ctx, chat_format)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = Engine(path, n_ctx, chat_format)
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
