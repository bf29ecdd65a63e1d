"""The OpenAI-compatible wire format: server-sent events, chunks, and error bodies."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from agents.backends.base import ChatRequest
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
# Tokenizer endpoints at the server's root, for servers whose streams carry no usage:
# llama-cpp-python's server ({"input"}) and llama.cpp's llama-server ({"content"}); both
# answer {"tokens": [...]}.
TOKENIZERS = (("/extras/tokenize", "input"), ("/tokenize", "content"))
MODEL_MISSING = re.compile(r"model.*(not found|does not exist)|no such model|unknown model", re.I)


def request_body(request: ChatRequest) -> dict[str, Any]:
    """A streamed /chat/completions request, with the options this server family reads."""
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


def server_root(base: str) -> str:
    """``http://host:8000/v1`` -> ``http://host:8000``: where the tokenizer endpoints live."""
    return base.removesuffix("/v1")


def token_list(body: Any) -> list[Any] | None:
    """The ``tokens`` of a tokenizer's answer, or None when it is not one."""
    tokens = body.get("tokens") if isinstance(body, dict) else None
    return tokens if isinstance(tokens, list) else None


def alike(name: str, served: list[str]) -> list[str]:
    """Served ids (often file paths) that look like ``name``: ``smollm2:135m`` is like
    ``/models/SmolLM2-135M-Instruct.Q4_1.gguf``."""

    def squash(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", text.lower())

    key = squash(name)
    return [s for s in served if key and key in squash(s.rsplit("/", 1)[-1])]


def transport_error(exc: BaseException, where: dict[str, Any]) -> BackendError:
    """The agents.errors twin of an aiohttp (or timeout) error."""
    # ClientConnectorError is a ClientOSError, and ServerTimeoutError a TimeoutError:
    # the order of these checks matters.
    if isinstance(exc, aiohttp.ClientConnectorError):
        return BackendUnavailable(f"cannot connect: {exc.os_error or exc}", **where)
    if isinstance(exc, TimeoutError):
        return BackendTimeout(f"the server went silent ({type(exc).__name__})", **where)
    if isinstance(exc, aiohttp.ClientPayloadError):  # the body ended before its end
        return StreamError("the server closed the connection mid-reply", **where)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return StreamError(f"connection lost: {exc or type(exc).__name__}", **where)
    return BackendUnavailable(f"{type(exc).__name__}: {exc}", **where)


def json_object(text: str, where: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise BadResponse(f"expected a JSON object, got {text[:200]!r}", **where)
    return value


def error_message(body: Any, secret: str | None = None) -> str:
    """The error text of OpenAI-style, ollama-style or plain bodies, without ``secret``."""
    # OpenAI: {"error": {"message"}}, ollama: {"error": "..."}, vLLM: {"message"},
    # FastAPI validation: {"detail"}
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        error = error.get("message") or error.get("detail") or json.dumps(error)
    text = str(error).strip()[:500]
    # Some servers echo the key they refused; it must not reach logs or transcripts.
    return text.replace(secret, "***") if secret else text


async def http_error(
    r: aiohttp.ClientResponse, where: dict[str, Any], secret: str | None, key_env: str | None
) -> BackendError:
    """The agents.errors twin of a non-200 answer."""
    raw = await r.text(errors="replace")
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw
    message = error_message(body, secret) or r.reason or "no details"
    status = r.status
    if status in (401, 403):
        hint = (
            f"check the API key in ${key_env}"
            if key_env
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


async def sse_data(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
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


def read_chunk(
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
