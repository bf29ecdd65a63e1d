"""The ollama backend: the official ``ollama.AsyncClient``, its errors mapped at the boundary.

Retries, first-token and whole-reply timeouts live in :mod:`runner.model.generate`; this module
only turns a :class:`ChatRequest` into deltas and a final, and library errors into
:mod:`agents.errors`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, cast

import httpx
import ollama
import pydantic
import structlog

from agents.backends import ollama_target
from agents.backends.base import (
    BackendSettings,
    ChatEvent,
    ChatRequest,
    Delta,
    Final,
    LoadedModel,
    ModelInfo,
    ProgressCallback,
)
from agents.backends.config import FIELDS, GenerateConfig
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

# GenerateConfig fields that travel in ollama's ``options``; keep_alive and json_schema
# have fields of their own in the request.
_OPTIONS = (
    "temperature", "seed", "num_predict", "top_p", "top_k", "min_p", "stop",
    "repeat_penalty", "num_ctx",
)  # fmt: skip

_NS_PER_MS = 1_000_000
_TIMINGS = {
    "total_ms": "total_duration",
    "load_ms": "load_duration",
    "prompt_eval_ms": "prompt_eval_duration",
    "eval_ms": "eval_duration",
}


def request_fields(config: GenerateConfig) -> dict[str, Any]:
    """``options``, ``keep_alive`` and ``format`` of an /api/chat request."""
    options = {k: v for k in _OPTIONS if (v := getattr(config, k)) is not None}
    return {
        "options": options or None,
        "keep_alive": config.keep_alive,
        "format": config.json_schema,
    }


def pull_hint(model: str) -> str:
    return f"run `ollama pull {model}` or pass --pull"


class OllamaBackend:
    name = "ollama"
    can_pull = True
    conversations_per_slot = 2
    supported_options = FIELDS

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        host, self._auth = ollama_target(settings.hosts)
        self.host: str | None = host
        self._client: ollama.AsyncClient | None = None

    def _get_client(self) -> ollama.AsyncClient:
        # Created on first use, inside the event loop that uses it (httpx connections
        # belong to one loop); aclose() closes it on that loop.
        if self._client is None:
            t = self.settings.timeouts
            self._client = ollama.AsyncClient(
                host=self.host,
                # ollama-python defaults to no timeout at all. `read` is the gap between
                # bytes, which spans a cold model load; waiting for a pooled connection
                # is queueing, like waiting for the first token.
                timeout=httpx.Timeout(
                    connect=t.connect, read=t.reply, write=t.connect, pool=t.first_token
                ),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                auth=httpx.BasicAuth(*self._auth) if self._auth else None,
            )
        return self._client

    def connection_key(self, model: str) -> str:
        return f"ollama|{self.host}"

    def default_concurrency(self) -> int:
        # Mirrors the server's own slot count when this process shares its environment.
        try:
            parallel = int(os.environ.get("OLLAMA_NUM_PARALLEL", ""))
        except ValueError:
            return 1
        return parallel if parallel > 0 else 1

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        done: Any = None
        try:
            stream = await self._get_client().chat(
                request.model,
                list(request.messages),
                stream=True,
                **request_fields(request.config),
            )
            # Close the library's generator (and its HTTP response) right here, also when
            # our consumer stops early or is cancelled; it is typed as a mere iterator.
            async with contextlib.aclosing(cast(AsyncGenerator[Any, None], stream)):
                async for part in stream:
                    if part.message.content:
                        yield Delta(part.message.content)
                    if part.done:
                        done = part
        except BackendError:
            raise
        except Exception as exc:
            mapped = self._error(exc, request.model)
            if mapped is exc:
                raise
            raise mapped from exc
        if done is None:
            return  # cut short: no final message (the runner says so and retries)
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

    async def find_model(self, name: str) -> ModelInfo:
        listed = {info.name: info for info in await self.list_models()}
        # ollama lists "llama3.2:latest" for a scenario that says "llama3.2".
        found = listed.get(name) or listed.get(f"{name}:latest")
        if found is None:
            raise ModelNotFound(
                f"model {name!r} not found",
                backend=self.name,
                host=self.host,
                model=name,
                hint=pull_hint(name),
            )
        return found

    async def list_models(self) -> list[ModelInfo]:
        try:
            listing = await self._get_client().list()
        except Exception as exc:
            mapped = self._error(exc, None)
            if mapped is exc:
                raise
            raise mapped from exc
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
            mapped = self._error(exc, model, pulling=True)
            if mapped is exc:
                raise
            raise mapped from exc

    async def release(self, model: str) -> None:
        """Unload ``model`` now: an empty chat with keep_alive 0 (ollama's own way)."""
        try:
            await self._get_client().chat(model, [], keep_alive=0)
        except BackendError:
            raise
        except Exception as exc:
            mapped = self._error(exc, model)
            if mapped is exc:
                raise
            raise mapped from exc

    async def loaded_models(self) -> list[LoadedModel]:
        """What the server holds now (/api/ps)."""
        try:
            listing = await self._get_client().ps()
        except Exception as exc:
            mapped = self._error(exc, None)
            if mapped is exc:
                raise
            raise mapped from exc
        return [
            LoadedModel(
                name=m.model or m.name or "",
                size=int(m.size) if m.size is not None else None,
                expires_at=m.expires_at,
            )
            for m in listing.models
        ]

    async def load_model(self, model: str, config: GenerateConfig) -> None:
        """An empty chat loads a model (ollama's own way), with the load-time options a
        request of ``config`` would send: other ones would force a reload."""
        fields = request_fields(config)
        try:
            await self._get_client().chat(
                model, [], options=fields["options"], keep_alive=fields["keep_alive"]
            )
        except Exception as exc:
            mapped = self._error(exc, model)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _error(self, exc: Exception, model: str | None, *, pulling: bool = False) -> Exception:
        where: dict[str, Any] = {"backend": self.name, "host": self.host, "model": model}
        return map_error(exc, where, pulling=pulling)


ErrorMaker = Callable[[Exception, dict[str, Any]], BackendError]

# Library exceptions and what they mean, most specific first.
_LIBRARY_ERRORS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], ErrorMaker], ...] = (
    (httpx.TimeoutException, lambda e, w: BackendTimeout(f"{type(e).__name__}: {e}", **w)),
    (
        (httpx.ConnectError, ConnectionError),
        lambda e, w: BackendUnavailable(f"cannot connect: {e}", **w),
    ),
    (
        httpx.TransportError,
        lambda e, w: StreamError(f"connection failed mid-reply: {type(e).__name__}: {e}", **w),
    ),
    (httpx.DecodingError, lambda e, w: BadResponse(f"undecodable reply: {e}", **w)),
    (json.JSONDecodeError, lambda e, w: BadResponse(f"unreadable reply: {e}", **w)),
    (ollama.RequestError, lambda e, w: BadRequest(str(e), **w)),
)


def map_error(exc: Exception, where: dict[str, Any], *, pulling: bool = False) -> Exception:
    """The agents.errors twin of a library error; anything unknown comes back unchanged.

    An exception that is not in this table is not the server's doing but a bug (ours or
    a library's): it must surface as an internal error, not pass for a bad reply.
    """
    if isinstance(exc, ollama.ResponseError):
        return response_error(exc, where, pulling=pulling)
    for kinds, make in _LIBRARY_ERRORS:
        if isinstance(exc, kinds):
            return make(exc, where)
    if isinstance(exc, pydantic.ValidationError):
        # ollama-python validates the request it sends and the replies it reads.
        if exc.title.endswith("Request"):
            return BadRequest(str(exc), **where)
        return BadResponse(f"unreadable reply: {exc}", **where)
    return exc


def response_error(
    exc: ollama.ResponseError, where: dict[str, Any], *, pulling: bool
) -> BackendError:
    """An error the ollama server itself reported, by status and text."""
    status, text = exc.status_code, str(exc.error)
    lowered = text.lower()
    model = where.get("model")
    # A mid-stream pull error ("file does not exist") has no HTTP status of its own.
    if status == 404 or (
        status < 500 and ("not found" in lowered or "file does not exist" in lowered)
    ):
        hint = pull_hint(model) if model and not pulling else None
        return ModelNotFound(text, status=status, hint=hint, **where)
    if status == -1:
        return StreamError(f"error mid-stream: {text}", **where)
    if status >= 500:
        return ServerError(text, status=status, **where)
    if 400 <= status < 500:
        return BadRequest(text, status=status, **where)
    return BadResponse(f"HTTP {status}: {text}", status=status, **where)
