"""The OpenAI-compatible backend: llama.cpp's llama-server, vLLM, LM Studio, ollama's /v1.

Several hosts serving the same model make one backend (:mod:`agents.backends.hostpool`);
the wire format lives in :mod:`agents.backends.openai_wire`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import yarl

from agents.backends import basic_auth, split_credentials
from agents.backends.base import (
    BackendSettings,
    ChatEvent,
    ChatRequest,
    Delta,
    Final,
    ModelInfo,
    ProgressCallback,
)
from agents.backends.hostpool import Host, HostPool
from agents.backends.openai_wire import (
    OPTIONS,
    alike,
    error_message,
    http_error,
    json_object,
    read_chunk,
    request_body,
    sse_data,
    transport_error,
)
from agents.backends.tokenizer import Tokenizers
from agents.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    ModelNotFound,
    StreamError,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"  # llama-server's default address
SUPPORTED = frozenset({*OPTIONS, "json_schema"})


def base_url(url: str) -> str:
    """``host:port``, a server root or a ``/v1`` URL -> the ``/v1`` base URL (credentials
    left as given: see :func:`host`)."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    shown = split_credentials(url)[0]
    try:
        parsed = yarl.URL(url)
    except ValueError as exc:
        raise ConfigError(f"invalid OpenAI-compatible server URL {shown!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(
            f"invalid OpenAI-compatible server URL {shown!r}: expected http(s)://host"
        )
    return url if parsed.path.endswith("/v1") else url + "/v1"


def host(url: str) -> Host:
    bare, credentials = split_credentials(base_url(url))
    return Host(bare, credentials)


def api_key(env: str | None) -> str | None:
    """The key in environment variable ``env``; refused when a header could not carry it."""
    if not env:
        return None
    key = os.environ.get(env) or None
    if key is None:
        raise ConfigError(f"environment variable {env} (api_key_env) is empty or not set")
    if not key.isprintable() or any(ch.isspace() for ch in key):
        raise ConfigError(
            f"environment variable {env} (api_key_env) holds spaces or control characters; "
            "an API key is one line of visible characters"
        )
    return key


def served_hint(name: str, served: list[str]) -> str:
    """What to name instead of ``name``: the served id that looks like it, if one does.

    Servers name models as they were started (llama-cpp-python: by file path), and a
    scenario's ``model:`` or ``--model`` may use those ids as they are.
    """
    if not served:
        return "the server lists no models at /v1/models"
    like = alike(name, served)
    pick = like[0] if len(like) == 1 else served[0] if len(served) == 1 else None
    listed = ", ".join(served[:12]) + (f" and {len(served) - 12} more" if len(served) > 12 else "")
    if pick is None:
        return f"it serves {listed}: name one of these as the model"
    return f"it serves {listed}: name it as the model, e.g. --model {pick!r}"


class OpenAIBackend:
    name = "openai"
    can_pull = False
    conversations_per_slot = 2
    supported_options = SUPPORTED

    def __init__(self, settings: BackendSettings) -> None:
        # "--host a,b" and repeated --host both name several servers of the same model.
        entries = settings.hosts or (os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,)
        urls = [u.strip() for entry in entries for u in entry.split(",") if u.strip()]
        self.pool = HostPool([host(u) for u in dict.fromkeys(urls)])
        self.host: str | None = ",".join(h.url for h in self.pool.hosts)
        self._timeouts = settings.timeouts
        self._key_env = settings.api_key_env
        self._key = api_key(self._key_env)
        if self._key and any(h.credentials for h in self.pool.hosts):
            raise ConfigError(
                "a host with user:password@ and an API key (api_key_env) cannot both be sent: "
                "both go in the Authorization header"
            )
        self._session: aiohttp.ClientSession | None = None
        self.tokenizers = Tokenizers(
            self._session_here, self._headers, wait=max(10.0, self._timeouts.connect)
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend(host={self.host!r}, api_key_env={self._key_env!r})"

    def connection_key(self, model: str) -> str:
        return f"openai|{self.host}"

    def default_concurrency(self) -> int:
        return 4 * len(self.pool)

    def _session_here(self) -> aiohttp.ClientSession:
        # Created on first use, inside the event loop that uses it; aclose() closes it.
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                sock_connect=self._timeouts.connect, sock_read=self._timeouts.reply
            )
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else None
            connector = aiohttp.TCPConnector(limit=32 * len(self.pool))
            self._session = aiohttp.ClientSession(
                timeout=timeout, connector=connector, headers=headers
            )
        return self._session

    @staticmethod
    def _headers(target: Host) -> dict[str, str] | None:
        return {"Authorization": basic_auth(target.credentials)} if target.credentials else None

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        target = self.pool.pick()
        target.in_flight += 1
        where: dict[str, Any] = {"backend": self.name, "host": target.url, "model": request.model}
        try:
            async with self._session_here().post(
                f"{target.url}/chat/completions",
                json=request_body(request),
                headers=self._headers(target),
            ) as r:
                if r.status != 200:
                    raise await http_error(r, where, self._key, self._key_env)
                finish: str | None = None
                usage: dict[str, Any] = {}
                pieces: list[str] = []
                async for data in sse_data(r):
                    if data == "[DONE]":
                        break
                    chunk = json_object(data, where)
                    if "error" in chunk or chunk.get("object") == "error":
                        message = error_message(chunk, self._key)
                        raise StreamError(f"server error mid-stream: {message}", **where)
                    text, finish, usage = read_chunk(chunk, finish, usage)
                    if text:
                        pieces.append(text)
                        yield Delta(text)
            if finish is None:
                # [DONE] or end of body without a finish reason: the reply was cut short
                # (llama-cpp-python's server does that to serve a newer request). No Final:
                # the runner reports a cut stream and retries.
                self.pool.failed(target, "stream_cut")
                return
            self.pool.succeeded(target)
            completion = usage.get("completion_tokens")
            if completion is None:  # no usage sent (llama-cpp-python): ask its tokenizer
                completion = await self.tokenizers.count(target, request.model, "".join(pieces))
            yield Final(
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=completion,
                done_reason=finish,
                host=target.url,
            )
        except BackendError as exc:
            if exc.retryable:
                self.pool.failed(target, exc.kind)
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = transport_error(exc, where)
            self.pool.failed(target, error.kind)
            raise error from exc
        finally:
            target.in_flight -= 1

    async def _models(self, target: Host) -> list[str]:
        where: dict[str, Any] = {"backend": self.name, "host": target.url}
        try:
            session = self._session_here()
            async with session.get(f"{target.url}/models", headers=self._headers(target)) as r:
                if r.status != 200:
                    raise await http_error(r, where, self._key, self._key_env)
                body = json_object(await r.text(), where)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(exc, where) from exc
        return [m["id"] for m in body.get("data") or () if isinstance(m, dict) and "id" in m]

    async def list_models(self) -> list[ModelInfo]:
        hosts = self.pool.hosts
        results = await asyncio.gather(*map(self._models, hosts), return_exceptions=True)
        names: set[str] = set()
        unreachable: list[BackendError] = []
        for result in results:
            if isinstance(result, BackendUnavailable | BackendTimeout):
                unreachable.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                names.update(result)
        if len(unreachable) == len(hosts):
            raise BackendUnavailable(
                "no OpenAI-compatible server answered: "
                + "; ".join(e.message for e in unreachable),
                backend=self.name,
                host=self.host,
            ) from unreachable[0]
        return [ModelInfo(name=n) for n in sorted(names)]

    async def find_model(self, name: str) -> ModelInfo:
        models = await self.list_models()
        for info in models:
            if info.name == name:
                return info
        raise ModelNotFound(
            f"model {name!r} not found",
            backend=self.name,
            host=self.host,
            model=name,
            hint=served_hint(name, [info.name for info in models]),
        )

    async def pull(self, model: str, progress: ProgressCallback) -> None:
        raise ModelNotFound(
            "OpenAI-compatible servers cannot pull models: load it on the server first",
            backend=self.name,
            host=self.host,
            model=model,
        )

    async def release(self, model: str) -> None:
        """Nothing to do: these servers load what they were started with."""

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
