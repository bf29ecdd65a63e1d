"""The ollama backend: the official ``ollama.AsyncClient``, its errors mapped at the boundary.

Retries, first-token and whole-reply timeouts live in :mod:`runner.generate`; this module
only turns a :class:`ChatRequest` into deltas and a final, and library errors into
:mod:`agents.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, cast

import httpx
import ollama
import pydantic
import structlog

from agents.backends import ollama_host
from agents.backends.base import (
    BackendSettings,
    ChatEvent,
    ChatRequest,
    Delta,
    Final,
    ModelInfo,
    ProgressCallback,
)
from agents.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ModelNotFound,
    ServerError,
    StreamError,
)

log = structlog.get_logger("sparring.ollama")

# The server ignores keys it does not know without a word, so a typo ("temprature")
# would silently change an experiment; we say so once per key instead.
KNOWN_OPTIONS = frozenset(
    {
        "seed", "temperature", "top_k", "top_p", "min_p", "num_predict", "stop",
        "repeat_penalty", "repeat_last_n", "presence_penalty", "frequency_penalty",
        "num_ctx", "num_batch", "num_gpu", "num_thread", "main_gpu", "use_mmap",
        "use_mlock", "numa", "typical_p", "tfs_z", "penalize_newline", "num_keep",
        "mirostat", "mirostat_tau", "mirostat_eta",
    }
)  # fmt: skip

_NS_PER_MS = 1_000_000
_TIMINGS = {
    "total_ms": "total_duration",
    "load_ms": "load_duration",
    "prompt_eval_ms": "prompt_eval_duration",
    "eval_ms": "eval_duration",
}


class OllamaBackend:
    name = "ollama"

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self.host: str | None = ollama_host(settings.hosts)
        self._client: ollama.AsyncClient | None = None
        self._closer: asyncio.Task[None] | None = None
        self._warned: set[str] = set()

    def _get_client(self) -> ollama.AsyncClient:
        loop = asyncio.get_running_loop()
        closer = self._closer
        if self._client is None or closer is None or closer.done() or closer.get_loop() is not loop:
            t = self.settings.timeouts
            client = ollama.AsyncClient(
                host=self.host,
                # ollama-python defaults to no timeout at all. `read` is the gap between
                # bytes, which spans a cold model load; waiting for a pooled connection
                # is queueing, like waiting for the first token.
                timeout=httpx.Timeout(
                    connect=t.connect, read=t.reply, write=t.connect, pool=t.first_token
                ),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            )
            # httpx connections belong to the loop that opened them. If nobody calls
            # aclose(), asyncio.run() cancels this task on the way out and the client is
            # closed on its own loop instead of leaking sockets; a later loop gets a new one.
            self._client = client
            self._closer = loop.create_task(self._close_on_cancel(client))
        return self._client

    @staticmethod
    async def _close_on_cancel(client: ollama.AsyncClient) -> None:
        try:
            await asyncio.Future()
        finally:
            await client.close()

    def connection_key(self, model: str) -> str:
        return f"ollama|{self.host}"

    def default_concurrency(self) -> int:
        # Mirrors the server's own slot count when this process shares its environment.
        try:
            parallel = int(os.environ.get("OLLAMA_NUM_PARALLEL", ""))
        except ValueError:
            return 1
        return parallel if parallel > 0 else 1

    def _check_options(self, options: Mapping[str, Any]) -> None:
        for key in options:
            if key not in KNOWN_OPTIONS and key not in self._warned:
                self._warned.add(key)
                log.warning("unknown ollama option, the server will ignore it", option=key)

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        self._check_options(request.options)
        done: Any = None
        try:
            stream = await self._get_client().chat(
                request.model,
                list(request.messages),
                stream=True,
                options=dict(request.options) or None,
            )
            # Close the library's generator (and its HTTP response) right here, also when
            # our consumer stops early or is cancelled; it is typed as a mere iterator.
            async with contextlib.aclosing(cast(AsyncGenerator[Any, None], stream)):
                async for part in stream:
                    if part.message.content:
                        yield Delta(part.message.content)
                    if part.done:
                        done = part
        except Exception as exc:
            raise self._error(exc, request.model) from exc
        if done is None:
            raise StreamError(
                "stream ended without a final message",
                backend=self.name,
                host=self.host,
                model=request.model,
            )
        yield Final(
            prompt_tokens=done.prompt_eval_count,
            completion_tokens=done.eval_count,
            done_reason=done.done_reason,
            server={
                ms: getattr(done, ns) / _NS_PER_MS
                for ms, ns in _TIMINGS.items()
                if getattr(done, ns) is not None
            },
            host=self.host,
        )

    async def list_models(self) -> list[ModelInfo]:
        try:
            listing = await self._get_client().list()
        except Exception as exc:
            raise self._error(exc, None) from exc
        models = []
        for m in listing.models:
            details = m.details
            models.append(
                ModelInfo(
                    name=m.model or "",
                    size=int(m.size) if m.size is not None else None,
                    family=details.family if details else None,
                    parameter_size=details.parameter_size if details else None,
                    quantization=details.quantization_level if details else None,
                    digest=m.digest,
                )
            )
        return models

    async def pull(self, model: str, progress: ProgressCallback) -> None:
        try:
            stream = await self._get_client().pull(model, stream=True)
            async with contextlib.aclosing(cast(AsyncGenerator[Any, None], stream)):
                async for part in stream:
                    progress(part.status or "", part.completed, part.total)
        except Exception as exc:
            raise self._error(exc, model, pulling=True) from exc

    async def aclose(self) -> None:
        closer, self._closer, self._client = self._closer, None, None
        if closer is not None and closer.get_loop() is asyncio.get_running_loop():
            closer.cancel()
            await asyncio.wait([closer])  # unlike `await closer`, keeps our own cancellation

    def _error(self, exc: Exception, model: str | None, *, pulling: bool = False) -> BackendError:
        """The agents.errors twin of a library error."""
        where: dict[str, Any] = {"backend": self.name, "host": self.host, "model": model}
        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, ollama.ResponseError):
            status, text = exc.status_code, str(exc.error)
            lowered = text.lower()
            # A mid-stream pull error ("file does not exist") has no HTTP status of its own.
            if status == 404 or (
                status < 500 and ("not found" in lowered or "file does not exist" in lowered)
            ):
                hint = f"; run `ollama pull {model}`" if model and not pulling else ""
                return ModelNotFound(text + hint, status=status, **where)
            if status == -1:
                return StreamError(f"error mid-stream: {text}", **where)
            if status >= 500:
                return ServerError(text, status=status, **where)
            if 400 <= status < 500:
                return BadRequest(text, status=status, **where)
            return BadResponse(f"HTTP {status}: {text}", status=status, **where)
        if isinstance(exc, httpx.TimeoutException):
            return BackendTimeout(f"{type(exc).__name__}: {exc}", **where)
        if isinstance(exc, httpx.ConnectError | ConnectionError):
            return BackendUnavailable(f"cannot connect: {exc}", **where)
        if isinstance(exc, httpx.TransportError):
            return StreamError(f"connection failed mid-reply: {type(exc).__name__}: {exc}", **where)
        if isinstance(exc, ollama.RequestError) or (
            # ollama-python validates the request it is about to send with pydantic
            isinstance(exc, pydantic.ValidationError) and exc.title.endswith("Request")
        ):
            return BadRequest(str(exc), **where)
        # json.JSONDecodeError and pydantic's ValidationError are ValueErrors.
        return BadResponse(f"unreadable reply: {type(exc).__name__}: {exc}", **where)
