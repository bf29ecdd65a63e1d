"""A fake OpenAI-compatible server: real HTTP, real server-sent events, scripted failures.

    async with FakeOpenAI(models=["fake"]) as fake:
        fake.script("hello there", Error(500, "boom"), Drop(after_tokens=2))
        backend = OpenAIBackend(BackendSettings(hosts=(fake.url,)))

Each chat request consumes one scripted action; with none left it answers a
deterministic text derived from the request.

:meth:`FakeOpenAI.like_llama_cpp_python` behaves as llama-cpp-python's server does out of
the box: its model listed by file path, no usage in streams (whatever ``stream_options``
asks), a tokenizer at ``POST /extras/tokenize`` (counting a BOS token), a stream in
progress cut short by any newer request (``[DONE]`` without a finish reason), and the
stream ended without a single event on a prompt longer than its context. Tokens here
are words.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agents.backends import basic_auth
from tests.fakes import structured
from tests.fakes.faults import Action, Drop, Error, Garbage, MidStreamError, Stall
from tests.fakes.threaded import serve_in_thread

# How llama-cpp-python's server behaves out of the box (see the module docstring).
LLAMA_CPP_PYTHON: dict[str, Any] = {
    "usage": False,
    "interrupt_requests": True,
    "tokenizer": "extras",
    "context": 2048,
    "token_delay": 0.01,
}
LLAMA_CPP_PYTHON_MODEL = "/models/SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None  # parsed JSON, or None
    action: Action | None = field(default=None, repr=False)


def default_reply(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    last = str(messages[-1].get("content", ""))
    return f"{body.get('model')} heard {len(messages)} messages, last: {last[:40]}"


class FakeOpenAI:
    def __init__(
        self,
        models: Iterable[str] = ("fake",),
        api_key: str | None = None,
        token_delay: float = 0.0,
        port: int = 0,
        basic_auth: tuple[str, str] | None = None,
        *,
        usage: bool = True,
        interrupt_requests: bool = False,
        tokenizer: str | None = None,
        context: int | None = None,
    ) -> None:
        self.models = list(models)
        self.usage = usage  # False: never send usage, as llama-cpp-python's server
        # True: a new chat request cuts the streams in progress short, as
        # llama-cpp-python's server does by default (--interrupt_requests True).
        self.interrupt_requests = interrupt_requests
        # "extras": llama-cpp-python's POST /extras/tokenize ({"input"}, BOS counted);
        # "llama-server": llama.cpp's POST /tokenize ({"content"}); None: no tokenizer.
        self.tokenizer = tokenizer
        self.context = context  # prompt tokens beyond this drop the stream before any text
        self.interrupted = 0  # streams cut short by a newer request
        self._streaming: set[asyncio.Event] = set()
        self.api_key = api_key
        self.token_delay = token_delay
        self.basic_auth = basic_auth  # a proxy's credentials, besides any API key
        self.port = port  # 0: an ephemeral port, known once started
        self.requests: list[RecordedRequest] = []
        self._script: deque[Action] = deque()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.url = ""

    @classmethod
    def like_llama_cpp_python(
        cls, model_path: str = LLAMA_CPP_PYTHON_MODEL, **kwargs: Any
    ) -> FakeOpenAI:
        """As ``python -m llama_cpp.server --model PATH`` with its default settings."""
        return cls([model_path], **(LLAMA_CPP_PYTHON | kwargs))

    def script(self, *actions: Action) -> None:
        self._script.extend(actions)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        if self.tokenizer == "extras":
            app.router.add_post("/extras/tokenize", self._tokenize)
        elif self.tokenizer == "llama-server":
            app.router.add_post("/tokenize", self._tokenize)
        # handler_cancellation: a handler stalling for a client that gave up ends with it.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, *args: Any, **kwargs: Any) -> Iterator[FakeOpenAI]:
        """Serve from a daemon thread with its own loop, for sync code and subprocesses."""
        fake = cls(*args, **kwargs)
        with serve_in_thread(fake, fake.__aenter__, fake.__aexit__):
            yield fake

    # -- handlers ---------------------------------------------------------------------

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.basic_auth is not None:
            if request.headers.get("Authorization") != basic_auth(self.basic_auth):
                return _error(401, "proxy authentication required")
            return None
        if self.api_key is None:
            return None
        given = request.headers.get("Authorization", "")
        if given == f"Bearer {self.api_key}":
            return None
        # Like some real servers, echo what was sent: the client must scrub it.
        return _error(401, f"Incorrect API key provided: {given.removeprefix('Bearer ')}")

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(RecordedRequest("GET", request.path, dict(request.headers)))
        refused = self._refused(request)
        if refused is not None:
            return refused
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _tokenize(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(RecordedRequest("POST", request.path, dict(request.headers), body))
        refused = self._refused(request)
        if refused is not None:
            return refused
        key = "input" if self.tokenizer == "extras" else "content"
        text = body.get(key) if isinstance(body, dict) else None
        if not isinstance(text, str):
            return _error(422, f"field required: {key}")
        bos = [1] if self.tokenizer == "extras" else []  # llama_cpp.server adds a BOS token
        return web.json_response({"tokens": bos + [hash(w) % 50_000 for w in words(text)]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if self.interrupt_requests:
            for stream in self._streaming:
                stream.set()
        try:
            body = await request.json()
        except ValueError:
            body = None
        action = self._script.popleft() if self._script else None
        record = RecordedRequest("POST", request.path, dict(request.headers), body, action)
        self.requests.append(record)
        refused = self._refused(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict) or "messages" not in body:
            return _error(400, "'messages' is a required property")
        if body.get("model") not in self.models:
            return _error(404, f"The model `{body.get('model')}` does not exist.")
        if isinstance(action, Stall) and action.after_tokens == 0:
            await self._sleep(action.seconds)
            action = None
        if isinstance(action, Error):
            if action.body is None:
                return _error(action.status, action.message)
            if isinstance(action.body, str):
                return web.Response(status=action.status, text=action.body)
            return web.json_response(action.body, status=action.status)
        response_format = body.get("response_format") or {}
        if isinstance(action, str):
            text = action
        elif response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            text = structured.reply(schema, f"{body.get('seed')}{body['messages']}")
        else:
            text = default_reply(body)
        tokens = [w if i == 0 else " " + w for i, w in enumerate(words(text))]
        finish = "stop"
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
        prompt_tokens = sum(len(words(str(m.get("content", "")))) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        }
        if not body.get("stream"):
            return web.json_response(
                _completion(body, "chat.completion")
                | {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(tokens)},
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                }
            )
        return await self._stream(request, body, action, tokens, finish, usage)

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        action: Action | None,
        tokens: list[str],
        finish: str,
        usage: dict[str, int],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        async def send(data: Any) -> None:
            await response.write(f"data: {json.dumps(data)}\n\n".encode())

        def chunk(delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
            return _completion(body, "chat.completion.chunk") | {
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
            }

        if self.context is not None and usage["prompt_tokens"] > self.context:
            # llama-cpp-python raises "Requested tokens exceed context window" inside the
            # stream: the client gets a 200 whose body ends without a single event.
            await response.write_eof()
            return response
        await response.write(b": keep-alive comment, to be ignored\n\n")
        await send(chunk({"role": "assistant", "content": ""}))
        cut = action.after_tokens if isinstance(action, MidStreamError | Drop | Garbage) else None
        stall = action if isinstance(action, Stall) else None
        interrupted = asyncio.Event()
        self._streaming.add(interrupted)
        try:
            for i, token in enumerate(tokens):
                if i == cut:
                    break
                if stall is not None and i == stall.after_tokens:
                    await self._sleep(stall.seconds)
                if self.token_delay:
                    await self._sleep(self.token_delay)
                if interrupted.is_set():
                    # llama-cpp-python's server: [DONE], no finish reason, no usage.
                    self.interrupted += 1
                    await response.write(b"data: [DONE]\n\n")
                    await response.write_eof()
                    return response
                await send(chunk({"content": token}))
        finally:
            self._streaming.discard(interrupted)
        if isinstance(action, Drop):
            assert request.transport is not None
            request.transport.close()
            return response
        if isinstance(action, Garbage):
            await response.write(f"data: {action.line}\n\n".encode())
            await response.write_eof()
            return response
        if isinstance(action, MidStreamError):
            await send({"error": {"message": action.message, "type": "server_error", "code": 500}})
        else:
            await send(chunk({}, finish))
            if self.usage and (body.get("stream_options") or {}).get("include_usage"):
                await send(
                    _completion(body, "chat.completion.chunk") | {"choices": [], "usage": usage}
                )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _sleep(self, seconds: float) -> None:
        # Ends early when the fake shuts down, so a stalled handler never delays a test.
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            pass


def words(text: str) -> list[str]:
    """The fake's tokens: words split on single spaces ("" has none)."""
    return text.split(" ") if text else []


def _completion(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": kind,
        "created": int(time.time()),
        "model": body["model"],
    }


def _error(status: int, message: str) -> web.Response:
    kind = {401: "invalid_request_error", 404: "NotFoundError"}.get(status, "server_error")
    body = {"error": {"message": message, "type": kind, "code": status}}
    return web.json_response(body, status=status)
