"""The embedded engine's worker: a loaded GGUF model and the one thread that may touch it.

Each loaded model (one per GGUF file, context size and chat format) is an *engine*: a
``llama_cpp.Llama`` plus one worker thread that owns it. Engines are shared by every
:class:`agents.backends.local.LocalBackend` of the process, because a model instance holds
one KV cache and cannot serve two generations at once: requests for the same model queue
on its thread. Tokens travel back to the event loop through an ``asyncio.Queue`` fed with
``call_soon_threadsafe``; when the consumer goes away, a stop flag ends generation at the
next token.

Engines are reference-counted: :func:`acquire` loads (or shares) one, :func:`release`
frees it when its last user lets go, so a backend closing its engines never pulls a model
from under another backend still using it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import io
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.backends.base import Final
from agents.errors import BackendError, BadRequest, EngineMissing, ServerError

NAME = "local"
HOST = "embedded"
INSTALL_HINT = (
    "the embedded engine is not installed: pip install 'sparring[local]' "
    "(compiles llama.cpp, about 10 minutes on 2 cores the first time)"
)
_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


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
    stop: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int | None = None
    sampled: int = 0
    last_token: int | None = None
    first_sample_at: float | None = None

    def emit(self, kind: str, payload: Any = None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, payload))
        except RuntimeError:  # the loop is closed: nobody will read
            self.stop.set()


@dataclass(frozen=True, slots=True)
class EngineStats:
    jobs: int
    cancelled: int
    tokens: int  # tokens of finished replies
    sampled: int  # every token sampled, cancelled jobs' included


class Engine:
    """A loaded model and the single thread that may touch it."""

    def __init__(self, path: Path, n_ctx: int, chat_format: str | None) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.chat_format = chat_format
        self.llm: Any = None
        self.load_ms: float | None = None
        self._job: Job | None = None
        self.jobs = 0
        self.cancelled = 0
        self.tokens = 0
        self.sampled = 0
        self._closed = False
        self._pending: set[Job] = set()
        self._pending_lock = threading.Lock()
        self._is_eog: Callable[[int], bool] = lambda token: False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"sparring-local-{path.stem[:24]}"
        )
        # Loading is the thread's first task, so requests simply queue behind it.
        self.loaded = self._executor.submit(self._load)

    def stats(self) -> EngineStats:
        return EngineStats(self.jobs, self.cancelled, self.tokens, self.sampled)

    # -- worker thread ---------------------------------------------------------------

    def _load(self) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise EngineMissing(INSTALL_HINT, backend=NAME, host=HOST) from exc
        _silence(llama_cpp)
        t0 = time.perf_counter()
        try:
            # Not verbose=False: that points the process's stdout and stderr file descriptors
            # at /dev/null while loading, and two loads on two threads can leave them there
            # for good (a simultaneous round loading two models lost all further output).
            # llama.cpp's own log lines already go to the silent callback; the library's
            # Python-level prints during loading go to a buffer, and then it is told to stop.
            with _LOAD_LOCK, contextlib.redirect_stderr(io.StringIO()):
                llm = llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=os.cpu_count() or 1,
                    verbose=True,
                    chat_format=self.chat_format,
                )
            llm.verbose = False
        except ValueError as exc:
            raise BadRequest(
                f"llama.cpp could not load {self.path} (not a GGUF model it supports?): {exc}",
                backend=NAME,
                host=HOST,
            ) from exc
        self.load_ms = (time.perf_counter() - t0) * 1000
        is_eog = getattr(llama_cpp, "llama_vocab_is_eog", None)
        vocab = getattr(getattr(llm, "_model", None), "vocab", None)
        eos = llm.token_eos()

        def end_of_generation(token: int) -> bool:
            if is_eog is not None and vocab is not None:
                return bool(is_eog(vocab, token))
            return token == eos

        self._is_eog = end_of_generation
        original_sample = llm.sample

        # Every token goes through Llama.sample: the one place to count tokens exactly,
        # learn the evaluated prompt length, and stop as soon as the reader has gone.
        def sample(*args: Any, **kwargs: Any) -> int:
            job = self._job
            if job is not None:
                if job.stop.is_set():
                    raise _Cancelled
                if job.prompt_tokens is None:
                    job.prompt_tokens = int(llm.n_tokens)
                    job.first_sample_at = time.perf_counter()
            token = int(original_sample(*args, **kwargs))
            if job is not None:
                job.sampled += 1
                self.sampled += 1
                job.last_token = token
            return token

        llm.sample = sample  # type: ignore[method-assign]  # per-instance hook, on purpose
        self.llm = llm

    def _run(self, job: Job) -> None:
        if job.stop.is_set():
            job.emit("cancelled")
            return
        llm = self.llm
        self._job = job
        self.jobs += 1
        t0 = time.perf_counter()
        try:
            # Start from an empty KV cache: reusing a cached prefix re-evaluates the last
            # prompt token alone, whose logits can differ in the last bits from a full
            # evaluation, and identical requests must give identical replies.
            llm.reset()
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
            end = time.perf_counter()
            completion = job.sampled
            if job.last_token is not None and self._is_eog(job.last_token):
                completion -= 1  # the end-of-turn token is sampled but not part of the reply
            self.tokens += completion
            first = job.first_sample_at or end
            job.emit(
                "final",
                Final(
                    prompt_tokens=job.prompt_tokens,
                    completion_tokens=completion,
                    done_reason=finish or "stop",
                    server={
                        "total_ms": (end - t0) * 1000,
                        "prompt_eval_ms": (first - t0) * 1000,
                        "eval_ms": (end - first) * 1000,
                    },
                    host=HOST,
                ),
            )
        except _Cancelled:
            self.cancelled += 1
            job.emit("cancelled")
        except BackendError as exc:
            job.emit("error", exc)
        except ValueError as exc:  # llama-cpp-python's word for a request it cannot serve
            job.emit("error", self._bad_request(exc, job.model))
        except RuntimeError as exc:  # llama.cpp itself failed (llama_decode returned ...)
            error = ServerError(
                f"llama.cpp failed: {exc}", backend=NAME, host=HOST, model=job.model
            )
            error.__cause__ = exc
            job.emit("error", error)
        except Exception as exc:  # anything else is a bug: the reader raises it unchanged
            job.emit("error", exc)
        finally:
            self._job = None

    def _bad_request(self, exc: ValueError, model: str) -> BadRequest:
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

    # -- any thread --------------------------------------------------------------------

    def submit(self, job: Job) -> concurrent.futures.Future[None]:
        future = self._executor.submit(self._run, job)
        with self._pending_lock:
            if not future.done():
                self._pending.add(job)
        future.add_done_callback(lambda _: self._done(job))
        return future

    def _done(self, job: Job) -> None:
        with self._pending_lock:
            self._pending.discard(job)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        # Queued jobs still run, but see their stop flag at once and tell their readers.
        with self._pending_lock:
            for job in [*self._pending, self._job]:
                if job is not None:
                    job.stop.set()
        self._executor.shutdown(wait=True)
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()


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


def unload_all() -> None:
    """Free every loaded model at once, whoever uses it; running generations stop first."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
        _USERS.clear()
    for engine in engines:
        engine.close()
