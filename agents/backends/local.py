"""The embedded engine: GGUF models run in-process through llama-cpp-python.

Each loaded model (one per GGUF file and context size) is an *engine*: a ``llama_cpp.Llama``
plus one worker thread that owns it. Engines are process-wide, shared by every
conversation and every :class:`LocalBackend`, because a model instance holds one KV cache
and cannot serve two generations at once: requests for the same model queue on its
thread. Tokens travel back to the event loop through an ``asyncio.Queue`` fed with
``call_soon_threadsafe``; when the consumer goes away, a stop flag ends generation at the
next token. :func:`unload_all` frees every engine when a run ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import io
import os
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.backends import local_engine_installed as engine_installed
from agents.backends.base import (
    BackendSettings,
    ChatEvent,
    ChatRequest,
    Delta,
    Final,
    Message,
    ModelInfo,
    ProgressCallback,
)
from agents.backends.gguf import (
    BUILTINS,
    ResolvedModel,
    builtin_installed,
    builtin_size,
    ollama_store_models,
    resolve_model,
    train_context_length,
)
from agents.errors import BackendError, BadRequest, BadResponse, EngineMissing, ModelNotFound

NAME = "local"
HOST = "embedded"
DEFAULT_NUM_CTX = 4096
CONTEXT_STEP = 256
INSTALL_HINT = (
    "the embedded engine is not installed: pip install 'sparring[local]' "
    "(compiles llama.cpp, about 10 minutes on 2 cores the first time)"
)
# Ollama's defaults, so a scenario samples alike on either backend.
DEFAULT_SAMPLING: dict[str, Any] = {
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "repeat_penalty": 1.1,
}
_PASSED_THROUGH = ("typical_p", "presence_penalty", "frequency_penalty")
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
class _Job:
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
    max_active: int
    tokens: int


class _Engine:
    """A loaded model and the single thread that may touch it."""

    def __init__(self, path: Path, n_ctx: int, chat_format: str | None) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.chat_format = chat_format
        self.llm: Any = None
        self.load_ms: float | None = None
        self._job: _Job | None = None
        self._active = 0
        self.jobs = 0
        self.cancelled = 0
        self.max_active = 0
        self.tokens = 0
        self._pending: set[_Job] = set()
        self._pending_lock = threading.Lock()
        self._is_eog: Callable[[int], bool] = lambda token: False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"sparring-local-{path.stem[:24]}"
        )
        # Loading is the thread's first task, so requests simply queue behind it.
        self.loaded = self._executor.submit(self._load)

    def stats(self) -> EngineStats:
        return EngineStats(self.jobs, self.cancelled, self.max_active, self.tokens)

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
                job.last_token = token
            return token

        llm.sample = sample  # type: ignore[method-assign]  # per-instance hook, on purpose
        self.llm = llm

    def _run(self, job: _Job) -> None:
        if job.stop.is_set():
            job.emit("cancelled")
            return
        llm = self.llm
        self._job = job
        self._active += 1
        self.max_active = max(self.max_active, self._active)
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
        except ValueError as exc:
            job.emit("error", self._bad_request(exc, job.model))
        except Exception as exc:
            error = BadResponse(
                f"llama.cpp failed: {type(exc).__name__}: {exc}",
                backend=NAME,
                host=HOST,
                model=job.model,
            )
            error.__cause__ = exc
            job.emit("error", error)
        finally:
            self._active -= 1
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

    def submit(self, job: _Job) -> concurrent.futures.Future[None]:
        future = self._executor.submit(self._run, job)
        with self._pending_lock:
            if not future.done():
                self._pending.add(job)
        future.add_done_callback(lambda _: self._done(job))
        return future

    def _done(self, job: _Job) -> None:
        with self._pending_lock:
            self._pending.discard(job)

    def close(self) -> None:
        # Queued jobs still run, but see their stop flag at once and tell their readers.
        with self._pending_lock:
            for job in [*self._pending, self._job]:
                if job is not None:
                    job.stop.set()
        self._executor.shutdown(wait=True)
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()


_ENGINES: dict[tuple[str, int, str | None], _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(path: Path, n_ctx: int, chat_format: str | None) -> _Engine:
    key = (str(path), n_ctx, chat_format)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = _Engine(path, n_ctx, chat_format)
        return engine


def _forget(engine: _Engine) -> None:
    with _ENGINES_LOCK:
        key = (str(engine.path), engine.n_ctx, engine.chat_format)
        if _ENGINES.get(key) is engine:
            del _ENGINES[key]


def loaded_engines() -> dict[tuple[str, int, str | None], EngineStats]:
    """What is loaded, with counters (for tests and the bench)."""
    with _ENGINES_LOCK:
        return {key: engine.stats() for key, engine in _ENGINES.items()}


def unload_all() -> None:
    """Free every loaded model and stop its thread; a running generation stops first."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.close()


def _gemma_messages(messages: list[Message]) -> list[dict[str, str]]:
    # Gemma has no system role and llama-cpp's "gemma" format drops system messages;
    # Gemma's own template prepends the system text to the first user turn, so do that.
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    out = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
    if system:
        if out and out[0]["role"] == "user":
            out[0]["content"] = f"{system}\n\n{out[0]['content']}"
        else:
            out.insert(0, {"role": "user", "content": system})
    return out


def context_size(num_ctx: int) -> int:
    """``num_ctx`` rounded up to llama.cpp's granularity.

    llama.cpp pads the context to a multiple of 256, while llama-cpp-python sizes its token
    buffer from the number asked for; a smaller, unpadded request overruns that buffer.
    """
    return max(CONTEXT_STEP, -(-num_ctx // CONTEXT_STEP) * CONTEXT_STEP)


def completion_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """ChatRequest options (ollama's vocabulary) as create_chat_completion arguments."""
    kwargs = {key: options.get(key, default) for key, default in DEFAULT_SAMPLING.items()}
    for key in _PASSED_THROUGH:
        if options.get(key) is not None:
            kwargs[key] = options[key]
    seed = options.get("seed")
    # No seed: a fresh one, as ollama does, rather than llama-cpp's fixed sequence.
    kwargs["seed"] = int(seed) if seed is not None else random.getrandbits(31)
    num_predict = options.get("num_predict")
    kwargs["max_tokens"] = int(num_predict) if num_predict is not None and num_predict > 0 else None
    stop = options.get("stop")
    if stop:
        kwargs["stop"] = [stop] if isinstance(stop, str) else list(stop)
    return kwargs


class LocalBackend:
    """Runs GGUF models in this process; see the module docstring."""

    name = NAME

    def __init__(self, settings: BackendSettings | None = None) -> None:
        if not engine_installed():
            raise EngineMissing(INSTALL_HINT, backend=NAME, host=HOST)
        self.settings = settings or BackendSettings()
        self.host: str | None = HOST
        self._resolved: dict[str, ResolvedModel] = {}

    def _resolve(self, model: str) -> ResolvedModel:
        resolved = self._resolved.get(model)
        if resolved is None:
            resolved = self._resolved[model] = resolve_model(model)
        return resolved

    def connection_key(self, model: str) -> str:
        try:
            return f"local|{self._resolve(model).path}"
        except ModelNotFound:
            return f"local|{model}"  # chat() reports the missing model

    def default_concurrency(self) -> int:
        return 1

    async def _load(self, request: ChatRequest) -> tuple[_Engine, ResolvedModel]:
        resolved = self._resolved.get(request.model)
        if resolved is None:  # may assemble a built-in on first use: off the loop
            resolved = await asyncio.to_thread(self._resolve, request.model)
        num_ctx = request.options.get("num_ctx")
        if num_ctx is None:
            train = await asyncio.to_thread(train_context_length, resolved.path)
            num_ctx = min(DEFAULT_NUM_CTX, train or DEFAULT_NUM_CTX)
        engine = _engine(resolved.path, context_size(int(num_ctx)), resolved.chat_format)
        try:
            await asyncio.wrap_future(engine.loaded)
        except BackendError as exc:
            _forget(engine)
            await asyncio.to_thread(engine.close)
            exc.model = request.model
            raise
        return engine, resolved

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        engine, resolved = await self._load(request)
        messages = (
            _gemma_messages(request.messages)
            if resolved.chat_format == "gemma"
            else [{"role": m["role"], "content": m["content"]} for m in request.messages]
        )
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        job = _Job(
            messages=messages,
            kwargs=completion_kwargs(request.options),
            loop=asyncio.get_running_loop(),
            queue=queue,
            model=request.model,
        )
        try:
            engine.submit(job)
        except RuntimeError as exc:  # unloaded meanwhile
            raise BadRequest("the model was unloaded", backend=NAME, host=HOST) from exc
        try:
            while True:
                kind, payload = await queue.get()
                if kind == "delta":
                    yield Delta(payload)
                elif kind == "final":
                    yield payload
                    return
                elif kind == "error":
                    raise payload
                else:  # cancelled: only by unload_all() while we were still reading
                    raise BadResponse(
                        "generation stopped: the model was unloaded",
                        backend=NAME,
                        host=HOST,
                        model=request.model,
                    )
        finally:
            # Cancelled, closed early or done: the worker stops at its next token.
            job.stop.set()

    async def list_models(self) -> list[ModelInfo]:
        return await asyncio.to_thread(self._list_models)

    def _list_models(self) -> list[ModelInfo]:
        models = [
            ModelInfo(
                name=b.name,
                size=builtin_size(b),
                family=b.family,
                parameter_size=b.parameter_size,
                quantization=b.quantization,
            )
            for b in BUILTINS.values()
            if builtin_installed(b)
        ]
        models.extend(
            ModelInfo(
                name=e.name,
                size=e.size,
                family=e.family,
                parameter_size=e.parameter_size,
                quantization=e.quantization,
                digest=e.digest,
            )
            for e in ollama_store_models()
        )
        return models

    async def pull(self, model: str, progress: ProgressCallback) -> None:
        builtin = BUILTINS.get(model)
        hint = (
            f"install it with: {builtin.install}"
            if builtin
            else "give a path to a .gguf file, or pull it with ollama (`ollama pull "
            f"{model}`) and run again"
        )
        raise ModelNotFound(
            f"the embedded engine cannot download models; {hint}",
            backend=NAME,
            host=HOST,
            model=model,
        )

    async def aclose(self) -> None:
        # Loaded models are shared by every instance; unload_all() frees them at the end.
        self._resolved.clear()
