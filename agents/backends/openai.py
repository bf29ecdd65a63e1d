"""The OpenAI-compatible backend: llama.cpp's llama-server, vLLM, LM Studio, ollama's /v1.

Several hosts serving the same model make one backend: each request goes to the least
busy host that is not backing off after a retryable failure, so the runner's retries
(which call :meth:`OpenAIBackend.chat` again) land on another host by themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
import yarl

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
    ConfigError,
    ModelNotFound,
    ServerError,
    StreamError,
)

log = structlog.get_logger("sparring.openai")

DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"  # llama-server's default address
# GenerateConfig fields -> request body keys. top_k, min_p and repeat_penalty are not
# OpenAI's, but llama-server and vLLM read them from the body. num_ctx is fixed when those
# servers start and keep_alive is ollama's: neither is sent.
OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "num_predict": "max_tokens",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
}
SUPPORTED = frozenset({*OPTIONS, "json_schema"})
BACKOFF_CAP = 60.0
MODEL_MISSING = re.compile(r"model.*(not found|does not exist)|no such model|unknown model", re.I)


def base_url(url: str) -> str:
    """``host:port``, a server root or a ``/v1`` URL -> the ``/v1`` base URL."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    try:
        parsed = yarl.URL(url)
    except ValueError as exc:
        raise ConfigError(f"invalid OpenAI-compatible server URL {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"invalid OpenAI-compatible server URL {url!r}: expected http(s)://host")
    return url if parsed.path.endswith("/v1") else url + "/v1"


@dataclass(slots=True)
class _Host:
    url: str
    in_flight: int = 0
    failures: int = 0  # consecutive retryable failures
    backoff_until: float = 0.0  # time.monotonic()


class OpenAIBackend:
    name = "openai"
    can_pull = False
    supported_options = SUPPORTED

    def __init__(self, settings: BackendSettings) -> None:
        # "--host a,b" and repeated --host both name several servers of the same model.
        entries = settings.hosts or (os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,)
        urls = [base_url(u) for entry in entries for u in entry.split(",") if u.strip()]
        self._hosts = [_Host(url) for url in dict.fromkeys(urls)]
        self.host: str | None = ",".join(h.url for h in self._hosts)
        self._timeouts = settings.timeouts
        self._key_env = settings.api_key_env
        self._key: str | None = None
        if self._key_env:
            self._key = os.environ.get(self._key_env) or None
            if self._key is None:
                raise ConfigError(
                    f"environment variable {self._key_env} (api_key_env) is empty or not set"
                )
        self._rr = 0
        self._session: aiohttp.ClientSession | None = None
        self.clock = time.monotonic  # replaceable, so back-off can be tested without waiting

    def __repr__(self) -> str:
        return f"OpenAIBackend(host={self.host!r}, api_key_env={self._key_env!r})"

    def connection_key(self, model: str) -> str:
        return f"openai|{self.host}"

    def default_concurrency(self) -> int:
        return 4 * len(self._hosts)

    def _session_here(self) -> aiohttp.ClientSession:
        # Created on first use, inside the event loop that uses it; aclose() closes it.
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                sock_connect=self._timeouts.connect, sock_read=self._timeouts.reply
            )
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else None
            connector = aiohttp.TCPConnector(limit=32 * len(self._hosts))
            self._session = aiohttp.ClientSession(
                timeout=timeout, connector=connector, headers=headers
            )
        return self._session

    def _pick(self) -> _Host:
        now = self.clock()
        n = len(self._hosts)
        order = [self._hosts[(self._rr + i) % n] for i in range(n)]  # min() keeps the first
        healthy = [h for h in order if h.backoff_until <= now]
        if healthy:
            host = min(healthy, key=lambda h: h.in_flight)
        else:
            host = min(order, key=lambda h: h.backoff_until)
        self._rr = (self._hosts.index(host) + 1) % n
        return host

    def _failed(self, host: _Host, exc: BackendError | None) -> None:
        host.failures += 1
        wait = min(BACKOFF_CAP, 2.0 ** (host.failures - 1))
        host.backoff_until = self.clock() + wait
        if len(self._hosts) > 1:
            kind = exc.kind if exc else "stream_cut"
            log.warning("backing off host", host=host.url, seconds=wait, error=kind)

    @staticmethod
    def _body(request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": list(request.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        config = request.config
        for field, key in OPTIONS.items():
            value = getattr(config, field)
            if value is None or (field == "num_predict" and value < 0):
                continue  # ollama's "no limit" (-1, -2) is OpenAI's absent max_tokens
            body[key] = value
        if config.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": config.json_schema, "strict": True},
            }
        return body

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        host = self._pick()
        host.in_flight += 1
        where: dict[str, Any] = {"backend": self.name, "host": host.url, "model": request.model}
        try:
            session = self._session_here()
            async with session.post(f"{host.url}/chat/completions", json=self._body(request)) as r:
                if r.status != 200:
                    raise await self._http_error(r, where)
                finish: str | None = None
                usage: dict[str, Any] = {}
                async for data in _sse_data(r):
                    if data == "[DONE]":
                        break
                    chunk = self._json(data, where)
                    if "error" in chunk or chunk.get("object") == "error":
                        raise StreamError(
                            f"server error mid-stream: {self._message(chunk)}", **where
                        )
                    text, finish, usage = _read_chunk(chunk, finish, usage)
                    if text:
                        yield Delta(text)
            if finish is None:
                # [DONE] or end of body without a finish reason: the reply was cut short
                # (llama-cpp-python's server does that to serve a newer request). No Final:
                # the runner reports a cut stream and retries.
                self._failed(host, None)
                return
            host.failures, host.backoff_until = 0, 0.0
            yield Final(
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
                done_reason=finish,
                host=host.url,
            )
        except BackendError as exc:
            if exc.retryable:
                self._failed(host, exc)
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = self._transport_error(exc, where)
            self._failed(host, error)
            raise error from exc
        finally:
            host.in_flight -= 1

    @staticmethod
    def _transport_error(exc: BaseException, where: dict[str, Any]) -> BackendError:
        # ClientConnectorError is a ClientOSError, and ServerTimeoutError a TimeoutError:
        # the order of these checks matters.
        if isinstance(exc, aiohttp.ClientConnectorError):
            return BackendUnavailable(f"cannot connect: {exc.os_error or exc}", **where)
        if isinstance(exc, TimeoutError):
            return BackendTimeout(f"the server went silent ({type(exc).__name__})", **where)
        if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
            return StreamError(f"connection lost: {exc or type(exc).__name__}", **where)
        return BackendUnavailable(f"{type(exc).__name__}: {exc}", **where)

    def _json(self, text: str, where: dict[str, Any]) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise BadResponse(f"expected a JSON object, got {text[:200]!r}", **where)
        return value

    def _message(self, body: Any) -> str:
        """The error text of OpenAI-style, ollama-style or plain bodies, without the key."""
        # OpenAI: {"error": {"message"}}, ollama: {"error": "..."}, vLLM: {"message"},
        # FastAPI validation: {"detail"}
        error = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(error, dict):
            error = error.get("message") or error.get("detail") or json.dumps(error)
        text = str(error).strip()[:500]
        # Some servers echo the key they refused; it must not reach logs or transcripts.
        return text.replace(self._key, "***") if self._key else text

    async def _http_error(self, r: aiohttp.ClientResponse, where: dict[str, Any]) -> BackendError:
        raw = await r.text(errors="replace")
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw
        message = self._message(body) or r.reason or "no details"
        status = r.status
        if status in (401, 403):
            hint = (
                f"check the API key in ${self._key_env}"
                if self._key_env
                else "the server wants an API key: set api_key_env to the name of the "
                "environment variable holding it"
            )
            return BadRequest(f"HTTP {status}: {message}; {hint}", status=status, **where)
        if status in (408, 409, 429) or status >= 500:
            return ServerError(f"HTTP {status}: {message}", status=status, **where)
        if status == 404 or MODEL_MISSING.search(message):
            return ModelNotFound(f"HTTP {status}: {message}", status=status, **where)
        if 400 <= status < 500:
            return BadRequest(f"HTTP {status}: {message}", status=status, **where)
        return BadResponse(f"unexpected HTTP {status}: {message}", status=status, **where)

    async def _models(self, host: _Host) -> list[str]:
        where: dict[str, Any] = {"backend": self.name, "host": host.url}
        try:
            async with self._session_here().get(f"{host.url}/models") as r:
                if r.status != 200:
                    raise await self._http_error(r, where)
                body = self._json(await r.text(), where)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._transport_error(exc, where) from exc
        return [m["id"] for m in body.get("data") or () if isinstance(m, dict) and "id" in m]

    async def list_models(self) -> list[ModelInfo]:
        results = await asyncio.gather(*map(self._models, self._hosts), return_exceptions=True)
        names: set[str] = set()
        unreachable: list[BackendError] = []
        for result in results:
            if isinstance(result, BackendUnavailable | BackendTimeout):
                unreachable.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                names.update(result)
        if len(unreachable) == len(self._hosts):
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
        served = ", ".join(info.name for info in models) or "nothing"
        raise ModelNotFound(
            f"model {name!r} not found",
            backend=self.name,
            host=self.host,
            model=name,
            hint=f"the server lists: {served} (name one of these as the model)",
        )

    async def pull(self, model: str, progress: ProgressCallback) -> None:
        raise ModelNotFound(
            "OpenAI-compatible servers cannot pull models: load it on the server first",
            backend=self.name,
            host=self.host,
            model=model,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _sse_data(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event, per the HTML spec's parsing rules."""
    buffer = b""
    data: list[str] = []
    # iter_any rather than readline: a long event must not hit aiohttp's line limit.
    async for chunk in response.content.iter_any():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            # comments (":...") and the event, id and retry fields carry nothing for us
    # An event cut off before its blank line is incomplete: the spec says to drop it.


def _read_chunk(
    chunk: dict[str, Any], finish: str | None, usage: dict[str, Any]
) -> tuple[str, str | None, dict[str, Any]]:
    """Text, finish reason and usage so far, after one ``chat.completion.chunk``."""
    text = ""
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            text = delta["content"]
        finish = choices[0].get("finish_reason") or finish
    if isinstance(chunk.get("usage"), dict):  # vLLM sends "usage": null in every chunk
        usage = chunk["usage"]
    return text, finish, usage
