"""The embedded engine as a backend: GGUF models run through llama-cpp-python.

This module maps names to GGUF files (:mod:`agents.backends.local.gguf`), generation
configs to llama-cpp-python's arguments, and requests to jobs for the model's engine
(:mod:`agents.backends.local.engine`), which runs the model in a worker process. A
backend holds the engines it used until :meth:`LocalBackend.aclose`, which releases them:
the run that loaded a model frees it.

Each reply with a session is logged (``engine context``, info level) with whether its
side's context was kept (``hit``), had to be read again (``miss``) or was new.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import structlog

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
from agents.backends.config import GenerateConfig
from agents.backends.local import engine as llama_engine
from agents.backends.local.engine import (
    HOST,
    INSTALL_HINT,
    NAME,
    Engine,
    Job,
    in_process_from_env,
    threads_from_env,
)
from agents.backends.local.gguf import (
    BUILTINS,
    ResolvedModel,
    builtin_installed,
    builtin_size,
    ollama_store_models,
    resolve_model,
    train_context_length,
)
from agents.backends.local.states import budget_from_env
from agents.errors import BackendError, EngineMissing, ModelNotFound, StreamError

DEFAULT_NUM_CTX = 4096
CONTEXT_STEP = 256
# Ollama's defaults, so a scenario samples alike on either backend.
DEFAULT_SAMPLING: dict[str, Any] = {
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "repeat_penalty": 1.1,
}
# keep_alive is a server's: an embedded model stays loaded for the backend's lifetime.
SUPPORTED = frozenset({*DEFAULT_SAMPLING, "seed", "num_predict", "stop", "num_ctx", "json_schema"})

log = structlog.get_logger("sparring.local")


def _gemma_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    # Gemma has no system role and llama-cpp's "gemma" format drops system messages;
    # Gemma's own template prepends the system text to the first user turn, so do that.
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    out = [dict(m) for m in messages if m["role"] != "system"]
    if system:
        if out and out[0]["role"] == "user":
            out[0]["content"] = f"{system}\n\n{out[0]['content']}"
        else:
            out.insert(0, {"role": "user", "content": system})
    return out


def chat_messages(messages: Sequence[Message], chat_format: str | None) -> list[dict[str, str]]:
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    return _gemma_messages(plain) if chat_format == "gemma" else plain


def context_size(num_ctx: int) -> int:
    """``num_ctx`` rounded up to llama.cpp's granularity.

    llama.cpp pads the context to a multiple of 256, while llama-cpp-python sizes its token
    buffer from the number asked for; a smaller, unpadded request overruns that buffer.
    """
    return max(CONTEXT_STEP, -(-num_ctx // CONTEXT_STEP) * CONTEXT_STEP)


def completion_kwargs(config: GenerateConfig) -> dict[str, Any]:
    """A generation config as ``create_chat_completion`` arguments."""
    kwargs = {
        key: value if (value := getattr(config, key)) is not None else default
        for key, default in DEFAULT_SAMPLING.items()
    }
    # No seed: a fresh one, as ollama does, rather than llama-cpp's fixed sequence.
    kwargs["seed"] = config.seed if config.seed is not None else random.getrandbits(31)
    num_predict = config.num_predict
    kwargs["max_tokens"] = num_predict if num_predict is not None and num_predict > 0 else None
    if config.stop:
        kwargs["stop"] = list(config.stop)
    if config.json_schema is not None:
        # llama-cpp-python turns the schema into a grammar that constrains sampling.
        kwargs["response_format"] = {"type": "json_object", "schema": config.json_schema}
    return kwargs


class LocalBackend:
    """Runs GGUF models on this machine; see the module docstring."""

    name = NAME
    can_pull = False
    supported_options = SUPPORTED
    # A model generates one reply at a time: one live conversation per slot finishes
    # first and keeps its context loaded, where more would only take turns.
    conversations_per_slot = 1

    def __init__(self, settings: BackendSettings | None = None) -> None:
        if not engine_installed():
            raise EngineMissing(INSTALL_HINT, backend=NAME, host=HOST)
        # A bad value is a ConfigError naming the variable.
        llama_engine.configure(state_budget=budget_from_env(), threads=threads_from_env())
        # Models in worker processes, unless SPARRING_LOCAL_IN_PROCESS says otherwise.
        self.in_process = in_process_from_env()
        if not self.in_process:
            llama_engine.prewarm()
        self.settings = settings or BackendSettings()
        self.host: str | None = HOST
        self._resolved: dict[str, ResolvedModel] = {}
        self._engines: dict[llama_engine.EngineKey, Engine] = {}

    def _resolve(self, model: str) -> ResolvedModel:
        resolved = self._resolved.get(model)
        if resolved is None:
            resolved = self._resolved[model] = resolve_model(model)
        return resolved

    def connection_key(self, model: str) -> str:
        resolved = self._resolved.get(model)  # find_model() resolved it off the event loop
        return f"local|{resolved.path}" if resolved else f"local|{model}"

    def default_concurrency(self) -> int:
        return 1

    async def _engine(self, request: ChatRequest) -> tuple[Engine, ResolvedModel]:
        resolved = self._resolved.get(request.model)
        if resolved is None:  # may assemble a built-in on first use: off the loop
            resolved = await asyncio.to_thread(self._resolve, request.model)
        num_ctx = request.config.num_ctx
        if num_ctx is None:
            train = await asyncio.to_thread(train_context_length, resolved.path)
            num_ctx = min(DEFAULT_NUM_CTX, train or DEFAULT_NUM_CTX)
        key = (str(resolved.path), context_size(num_ctx), resolved.chat_format, self.in_process)
        engine = self._engines.get(key)
        if engine is None or engine.closed:  # unload_all() may have freed it meanwhile
            engine = self._engines[key] = llama_engine.acquire(*_unkey(key))
        try:
            await asyncio.wrap_future(engine.loaded)
        except BackendError as exc:
            # Several requests may wait on one failed load: the first to wake lets it go.
            if self._engines.get(key) is engine:
                del self._engines[key]
                await asyncio.to_thread(llama_engine.release, engine)
            exc.model = request.model
            raise
        return engine, resolved

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        engine, resolved = await self._engine(request)
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        job = Job(
            messages=chat_messages(request.messages, resolved.chat_format),
            kwargs=completion_kwargs(request.config),
            loop=asyncio.get_running_loop(),
            queue=queue,
            model=request.model,
            session=request.session if request.extends else None,
        )
        try:
            engine.submit(job)
        except RuntimeError as exc:  # the engine was shut down meanwhile
            raise self._unloaded(request.model) from exc
        try:
            while True:
                kind, payload = await queue.get()
                if kind == "delta":
                    yield Delta(payload)
                elif kind == "final":
                    _log_context(job, payload)
                    yield payload
                    return
                elif kind == "error":
                    raise payload
                else:  # cancelled: only by unloading while we were still reading
                    raise self._unloaded(request.model)
        finally:
            # Cancelled, closed early or done: the worker stops at its next token.
            job.stop.set()

    @staticmethod
    def _unloaded(model: str) -> StreamError:
        # One classification, wherever it is noticed: the reply was cut short.
        return StreamError(
            "generation stopped: the model was unloaded", backend=NAME, host=HOST, model=model
        )

    async def list_models(self) -> list[ModelInfo]:
        return await asyncio.to_thread(_installed_models)

    async def find_model(self, name: str) -> ModelInfo:
        resolved = await asyncio.to_thread(self._resolve, name)  # ModelNotFound has the hint
        builtin = BUILTINS.get(name)
        if builtin is not None:
            return ModelInfo(
                name=name,
                size=builtin_size(builtin),
                family=builtin.family,
                parameter_size=builtin.parameter_size,
                quantization=builtin.quantization,
            )
        for entry in await asyncio.to_thread(lambda: list(ollama_store_models())):
            if entry.path == resolved.path:
                return ModelInfo(
                    name=name,
                    size=entry.size,
                    family=entry.family,
                    parameter_size=entry.parameter_size,
                    quantization=entry.quantization,
                    digest=entry.digest,
                )
        return ModelInfo(name=name, family=resolved.family)

    async def pull(self, model: str, progress: ProgressCallback) -> None:
        builtin = BUILTINS.get(model)
        hint = (
            f"install it with: {builtin.install}"
            if builtin
            else f"ollama can (`ollama pull {model}`), into the store this engine reads"
        )
        raise ModelNotFound(
            "the embedded engine cannot download models",
            backend=NAME,
            host=HOST,
            model=model,
            hint=hint,
        )

    async def release(self, model: str) -> None:
        """Let go of ``model``'s engines (freed when no other backend uses them)."""
        resolved = self._resolved.get(model)
        if resolved is None:
            return
        for key in [k for k in self._engines if k[0] == str(resolved.path)]:
            engine = self._engines.pop(key)
            await asyncio.to_thread(llama_engine.release, engine)

    async def aclose(self) -> None:
        """Release the engines this backend used; the last user of a model unloads it."""
        engines = list(self._engines.values())
        self._engines.clear()
        self._resolved.clear()
        for engine in engines:
            await asyncio.to_thread(llama_engine.release, engine)


def _installed_models() -> list[ModelInfo]:
    """The built-in models installed, then the ollama store's."""
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


def _log_context(job: Job, final: Final) -> None:
    if job.outcome is None:
        return
    log.info(
        "engine context",
        session=job.session,
        model=job.model,
        result=job.outcome,
        source=job.source,
        reused_tokens=job.reused,
        evaluated_tokens=(final.prompt_tokens or 0) - job.reused,
    )


def _unkey(key: llama_engine.EngineKey) -> tuple[Path, int, str | None, bool]:
    return Path(key[0]), key[1], key[2], key[3]
