"""A fake ollama server that speaks the real wire format, built on aiohttp.web.

Backend tests run the real ``ollama.AsyncClient`` and httpx against it, so chunked NDJSON,
error bodies and dropped connections are the genuine article rather than a mocked client.
It also serves the throughput benchmark (``parallel`` slots, ``token_delay``) and lets a
user try sparring without ollama::

    python -m tests.fakes.ollama_server --port 11434 --model qwen:0.5b --model llama3.2:1b
    sparring run scenarios/i-lost.yaml

In a test::

    async with FakeOllama(models=["qwen:0.5b"]) as fake:
        fake.script("qwen:0.5b", "Hello there.", Error(503, SERVER_BUSY_MESSAGE))
        ...  # talk to fake.url; fake.requests holds every /api/chat body

Scripted actions are consumed one per generating /api/chat request (an empty chat, which
loads or unloads a model, consumes none), the model's own queue first, then the queue
scripted for any model (``None``); with none left the reply is :meth:`FakeOllama.reply_for`,
a deterministic function of the request. ``max_loaded`` and ``load_delay`` make it hold few
models at once, as ollama does (:class:`Residency`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from agents.backends import basic_auth
from tests.fakes import structured
from tests.fakes.faults import Action, Cut, Drop, Error, Garbage, MidStreamError, Stall
from tests.fakes.threaded import serve_in_thread

VERSION = "0.12.6"
NOT_FOUND_MESSAGE = 'model "{model}" not found, try pulling it first'
RUNNER_STOPPED_MESSAGE = (
    "model runner has unexpectedly stopped, this may be due to resource limitations "
    "or an internal error, check ollama server logs for details"
)
SERVER_BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
PULL_NOT_FOUND_MESSAGE = "pull model manifest: file does not exist"
CONCESSION = "Fine. I lost."


_OPENERS = (
    "I disagree.",
    "That is not quite right.",
    "Consider this.",
    "An interesting point, but no.",
    "Let me push back on that.",
)
_CLAIMS = (
    "{w} is overrated",
    "nobody has ever proven {w}",
    "the evidence on {w} points the other way",
    "{w} only sounds convincing",
    "you have misunderstood {w}",
)

_DULL = frozenset(
    "about after again anything being could every never other their there these think "
    "those which while would should sentence".split()
)


def normalize(name: str) -> str:
    """``qwen`` means ``qwen:latest`` to ollama."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")  # Go's RFC 3339, ns


def _tokens(text: str) -> list[str]:
    """Word-sized pieces that join back into exactly ``text``."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or [text]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _line(response: web.StreamResponse, obj: dict[str, Any]) -> None:
    await response.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")


LOAD_OPTIONS = ("num_ctx", "num_batch", "num_gpu", "num_thread")  # a change forces a reload
DEFAULT_KEEP_ALIVE = 300.0  # ollama's OLLAMA_KEEP_ALIVE default, 5 minutes
FIRST_USE_NS = 1_250_000_000  # what an unlimited fake reports for a model's first use
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def keep_alive_seconds(value: Any) -> float | None:
    """``keep_alive`` as ollama reads it, in seconds; None: never unload (negative)."""
    if value is None:
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, int | float):
        return None if value < 0 else float(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        parts = _GO_DURATION.findall(text)
        if not parts:
            return DEFAULT_KEEP_ALIVE
        number = sum(float(n) * _UNIT_S[unit] for n, unit in parts)
        number = -number if text.startswith("-") else number
    return None if number < 0 else number


def _load_options(options: Any) -> tuple[Any, ...]:
    options = options if isinstance(options, dict) else {}
    return tuple(options.get(k) for k in LOAD_OPTIONS)


class Residency:
    """Which models the fake holds in memory, the way ollama's scheduler does.

    At most ``max_loaded`` models are loaded (None: any number). A request for another one
    evicts the least recently used idle model (or waits until one is idle) and then spends
    ``load_delay`` seconds loading, reported as the reply's ``load_duration`` (an unlimited
    fake waits for nothing and reports 1.25 s on a model's first use). Requests for loaded
    models go ahead while another model loads; one whose load-time options (``num_ctx``...)
    differ from the loaded model's reloads it once it is idle. An idle model unloads when
    its request's ``keep_alive`` runs out (5 minutes by default; 0 at once; negative
    never): that is expiry, not eviction. The limit is the fake's own: like ollama, it
    publishes it nowhere.
    """

    def __init__(self, max_loaded: int | None, load_delay: float) -> None:
        self.max_loaded = max_loaded
        self.load_delay = load_delay
        self.loaded: dict[str, float] = {}  # model -> last use (loop time), LRU order
        self.options: dict[str, tuple[Any, ...]] = {}  # model -> its load-time options
        self.keep: dict[str, float | None] = {}  # model -> its last request's keep_alive
        self.idle_since: dict[str, float] = {}  # model -> when its last request ended
        self.users: Counter[str] = Counter()
        self.loads: Counter[str] = Counter()
        self.evicted: Counter[str] = Counter()  # unloaded to make room for another model
        self.expired: Counter[str] = Counter()
        self.most_loaded = 0
        self.skew = 0.0  # seconds added to the loop's clock: see advance()
        self._lock = asyncio.Lock()
        self._idle = asyncio.Event()

    @property
    def evictions(self) -> int:
        return sum(self.evicted.values())

    def _now(self) -> float:
        return asyncio.get_running_loop().time() + self.skew

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on, so that keep-alives run out without waiting for them."""
        self.skew += seconds

    def expires_in(self, model: str) -> float | None:
        """Seconds until ``model`` unloads unless used again; None: not while in use, or never."""
        keep = self.keep.get(model, DEFAULT_KEEP_ALIVE)
        if keep is None:
            return None
        if self.users[model] > 0:
            return keep
        return self.idle_since.get(model, self._now()) + keep - self._now()

    def expire(self) -> None:
        """Unload the idle models whose keep_alive has run out."""
        for model in list(self.loaded):
            left = self.expires_in(model)
            if self.users[model] == 0 and left is not None and left <= 0:
                self._drop(model)
                self.expired[model] += 1

    async def acquire(self, model: str, options: Any = None, keep_alive: Any = None) -> int:
        """Hold ``model`` for one request; the nanoseconds spent loading it."""
        wanted = _load_options(options)
        self.expire()
        if model in self.loaded and self.options[model] == wanted:
            return self._use(model, keep_alive)
        async with self._lock:  # one load at a time, as ollama's scheduler does
            while True:
                self.expire()
                if model in self.loaded:
                    if self.options[model] == wanted:
                        return self._use(model, keep_alive)
                    if self.users[model] == 0:
                        self._drop(model)  # loaded with other options: load it again
                        continue
                elif self.max_loaded is None or len(self.loaded) < self.max_loaded:
                    break
                else:
                    idle = [m for m in self.loaded if self.users[m] == 0]
                    if idle:
                        victim = min(idle, key=self.loaded.__getitem__)
                        self._drop(victim)
                        self.evicted[victim] += 1
                        break
                self._idle.clear()
                await self._idle.wait()
            self.users[model] += 1
            if self.load_delay:
                await asyncio.sleep(self.load_delay)
            self.loaded[model] = self._now()
            self.options[model] = wanted
            self.keep[model] = keep_alive_seconds(keep_alive)
            self.loads[model] += 1
            self.most_loaded = max(self.most_loaded, len(self.loaded))
            if self.max_loaded is None and not self.load_delay:
                return FIRST_USE_NS
            return int(self.load_delay * 1e9)

    def _use(self, model: str, keep_alive: Any) -> int:
        self.users[model] += 1
        self.loaded[model] = self._now()
        self.keep[model] = keep_alive_seconds(keep_alive)
        return 0

    def release(self, model: str) -> None:
        self.users[model] -= 1
        if self.users[model] == 0:
            self.idle_since[model] = self._now()
            if self.keep.get(model) == 0:
                self._drop(model)
            self._idle.set()

    def unload(self, model: str) -> None:
        """``keep_alive: 0`` on an empty chat: now, or once its requests are done."""
        if self.users[model] > 0:
            self.keep[model] = 0
        else:
            self._drop(model)

    def _drop(self, model: str) -> None:
        if self.loaded.pop(model, None) is not None:
            self._idle.set()


class FakeOllama:
    """An ollama look-alike on 127.0.0.1; ``async with`` starts it on an ephemeral port."""

    def __init__(
        self,
        models: Iterable[str] = ("qwen:0.5b",),
        *,
        token_delay: float = 0.0,
        parallel: int | None = None,
        concede_after: int | None = 3,
        pullable: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        basic_auth: tuple[str, str] | None = None,
        max_loaded: int | None = None,
        load_delay: float = 0.0,
    ) -> None:
        self.models: dict[str, dict[str, Any]] = {}
        # max_loaded None: every model stays resident after its first use (until its
        # keep_alive runs out), its first load reported, not waited for.
        self.residency = Residency(max_loaded, load_delay)
        for name in models:
            self.add_model(name)
        self.token_delay = token_delay
        self.parallel = parallel
        self.concede_after = concede_after
        # None: any name can be pulled; else only these (others fail like a missing manifest).
        self.pullable = None if pullable is None else {normalize(n) for n in pullable}
        self.host = host
        self.port = port
        # Like a reverse proxy in front of ollama: every request needs these credentials.
        self.basic_auth = basic_auth
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.requests: list[dict[str, Any]] = []  # every /api/chat body, in arrival order
        self.active = 0  # chat streams being served now
        self.max_active = 0
        self._script: dict[str | None, deque[Action]] = defaultdict(deque)
        self._slots: asyncio.Semaphore | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_model(self, name: str) -> None:
        name = normalize(name)
        base, _, tag = name.rpartition(":")
        digest = hashlib.sha256(name.encode()).hexdigest()
        family = re.match(r"[a-z]*", base.rsplit("/", 1)[-1]).group() or base  # type: ignore[union-attr]
        size = re.fullmatch(r"(\d+(?:\.\d+)?)([bm])", tag)
        self.models[name] = {
            "name": name,
            "model": name,
            "modified_at": "2025-01-01T00:00:00.000000000Z",
            "size": 100_000_000 + int(digest[:6], 16),
            "digest": digest,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": family,
                "families": [family],
                "parameter_size": size.group(0).upper() if size else "1B",
                "quantization_level": "Q4_K_M",
            },
        }

    def script(self, model: str | None, *actions: Action) -> None:
        """Queue actions for ``model``'s next /api/chat requests (``None``: any model)."""
        self._script[None if model is None else normalize(model)].extend(actions)

    def reply_for(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> str:
        """The unscripted reply: stable for a given model, last user message and seed."""
        own = sum(1 for m in messages if m.get("role") == "assistant")
        if self.concede_after is not None and own >= self.concede_after:
            return CONCESSION  # lets "argue until someone says 'I lost'" end
        last = next(
            (str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        key = f"{normalize(model)}\0{last}\0{options.get('seed')}"
        d = hashlib.sha256(key.encode()).digest()
        words = [w.strip(".,!?;:\"'()").lower() for w in last.split()]
        words = [w for w in words if len(w) > 4 and w not in _DULL] or ["that"]
        claim = _CLAIMS[d[1] % len(_CLAIMS)].format(w=words[d[2] % len(words)])
        return f"{_OPENERS[d[0] % len(_OPENERS)]} I think {claim}."

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> FakeOllama:
        app = web.Application(middlewares=[self._track])
        app.router.add_post("/api/chat", self._chat)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_post("/api/show", self._show)
        app.router.add_get("/api/ps", self._ps)
        app.router.add_post("/api/pull", self._pull)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/", self._root)
        self._slots = asyncio.Semaphore(self.parallel) if self.parallel else None
        # handler_cancellation: a client that hangs up ends its (possibly stalled) handler.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = site._server  # aiohttp exposes the bound port nowhere else
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOllama:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, *args: Any, **kwargs: Any) -> Iterator[FakeOllama]:
        """Serve from a daemon thread with its own loop, for sync code and subprocesses."""
        fake = cls(*args, **kwargs)
        with serve_in_thread(fake, fake.start, fake.stop):
            yield fake

    @web.middleware
    async def _track(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        given = request.headers.get("Authorization")
        self.authorizations.append(given)
        if self.basic_auth is not None and given != basic_auth(self.basic_auth):
            return web.Response(
                status=401, text="401 Unauthorized", headers={"WWW-Authenticate": "Basic"}
            )
        try:
            return await handler(request)
        finally:
            self._tasks.discard(task)

    # -- /api/chat -------------------------------------------------------------------------

    def _next_action(self, model: str) -> Action | None:
        for key in (model, None):
            if self._script.get(key):
                return self._script[key].popleft()
        return None

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        # Like ollama's per-model slots: extra requests wait, they are not refused.
        async with self._slots or contextlib.nullcontext():
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            try:
                yield
            finally:
                self.active -= 1

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter_ns()
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid character in request body")
        if not isinstance(body, dict):
            return _error(400, "json: cannot unmarshal request body")
        self.requests.append(body)
        name = str(body.get("model") or body.get("name") or "")
        if not name:
            return _error(400, "model is required")
        model = normalize(name)
        if model not in self.models:
            return _error(404, NOT_FOUND_MESSAGE.format(model=name))
        messages = body.get("messages") or []
        head = {"model": name}
        keep_alive = body.get("keep_alive")
        options = body.get("options")
        if not messages:  # an empty chat loads the model, or unloads it with keep_alive 0
            message = {"role": "assistant", "content": ""}
            if keep_alive_seconds(keep_alive) == 0:
                self.residency.unload(model)
                reply = {**head, "created_at": _now(), "message": message, "done_reason": "unload"}
                return web.json_response({**reply, "done": True})
            # Like ollama's, the answer comes once the model is loaded, and says no durations.
            await self.residency.acquire(model, options, keep_alive)
            self.residency.release(model)
            load = {**head, "created_at": _now(), "message": message, "done_reason": "load"}
            return web.json_response({**load, "done": True})
        action = self._next_action(model)  # scripted for generating requests only
        if isinstance(action, Error):
            return _error(action.status, action.message)
        load_ns = await self.residency.acquire(model, options, keep_alive)
        try:
            return await self._reply(request, body, model, action, load_ns, t0)
        finally:
            self.residency.release(model)

    async def _reply(
        self,
        request: web.Request,
        body: dict[str, Any],
        model: str,
        action: Action | None,
        load_ns: int,
        t0: int,
    ) -> web.StreamResponse:
        head = {"model": str(body.get("model") or body.get("name") or "")}
        messages = body.get("messages") or []
        options = body.get("options") or {}

        if isinstance(action, str):
            text = action
        elif body.get("format"):  # structured output: a JSON document following the schema
            text = structured.reply(body["format"], f"{options.get('seed')}{messages}")
        else:
            text = self.reply_for(model, messages, options)
        tokens, reason = _tokens(text), "stop"
        num_predict = options.get("num_predict")
        if isinstance(num_predict, int) and 0 <= num_predict < len(tokens):
            tokens, reason = tokens[:num_predict], "length"
        cut = action if isinstance(action, Cut) else None
        prompt_count = sum(len(str(m.get("content", "")).split()) + 4 for m in messages)

        def final(eval_ns: int) -> dict[str, Any]:
            return {
                "done": True,
                "done_reason": reason,
                "total_duration": time.perf_counter_ns() - t0 + load_ns,
                "load_duration": load_ns,
                "prompt_eval_count": prompt_count,
                "prompt_eval_duration": prompt_count * 50_000,
                "eval_count": len(tokens),
                "eval_duration": max(eval_ns, 1),
            }

        async with self._slot():
            if body.get("stream", True) is False:
                return await self._chat_whole(request, head, tokens, cut, final)
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            t_eval = time.perf_counter_ns()
            loop = asyncio.get_running_loop()
            # Tokens are paced against absolute times, like a server generating at a steady
            # rate, so sleep overshoot does not add up over a reply.
            paced_from = loop.time()
            try:
                for i in range(len(tokens) + 1):
                    if cut is not None and i == min(cut.after_tokens, len(tokens)):
                        if isinstance(cut, Stall):
                            await asyncio.sleep(cut.seconds)
                        elif isinstance(cut, Drop):
                            assert request.transport is not None
                            request.transport.close()  # flushes what was written, then FIN
                            return response
                        else:
                            if isinstance(cut, Garbage):
                                await response.write(cut.line.encode() + b"\n")
                            else:
                                await _line(response, {"error": cut.message})
                            await response.write_eof()
                            return response
                    if i == len(tokens):
                        break
                    if self.token_delay:
                        due = paced_from + (i + 1) * self.token_delay
                        await asyncio.sleep(max(0.0, due - loop.time()))
                    message = {"role": "assistant", "content": tokens[i]}
                    chunk = {**head, "created_at": _now(), "message": message, "done": False}
                    await _line(response, chunk)
                message = {"role": "assistant", "content": ""}
                done = final(time.perf_counter_ns() - t_eval)
                await _line(response, {**head, "created_at": _now(), "message": message, **done})
                await response.write_eof()
            except ConnectionResetError:
                pass  # the client hung up; ollama just stops generating
            return response

    async def _chat_whole(
        self,
        request: web.Request,
        head: dict[str, Any],
        tokens: list[str],
        cut: Cut | None,
        final: Callable[[int], dict[str, Any]],
    ) -> web.StreamResponse:
        t_eval = time.perf_counter_ns()
        if isinstance(cut, Stall):
            await asyncio.sleep(cut.seconds)
        if isinstance(cut, MidStreamError):
            return _error(500, cut.message)
        if isinstance(cut, Garbage):
            return web.Response(text=cut.line, content_type="text/html")
        if isinstance(cut, Drop):
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if self.token_delay:
            await asyncio.sleep(self.token_delay * len(tokens))
        message = {"role": "assistant", "content": "".join(tokens)}
        return web.json_response(
            {
                **head,
                "created_at": _now(),
                "message": message,
                **final(time.perf_counter_ns() - t_eval),
            }
        )

    # -- other endpoints -------------------------------------------------------------------

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": list(self.models.values())})

    async def _show(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = str(body.get("model") or body.get("name") or "")
        entry = self.models.get(normalize(name)) if name else None
        if entry is None:
            return _error(404, NOT_FOUND_MESSAGE.format(model=name))
        details = entry["details"]
        return web.json_response(
            {
                "license": "",
                "modelfile": f"FROM {entry['name']}\n",
                "parameters": 'stop "<|im_end|>"',
                "template": "{{ .Prompt }}",
                "details": details,
                "model_info": {"general.architecture": details["family"]},
                "capabilities": ["completion"],
                "modified_at": entry["modified_at"],
            }
        )

    async def _ps(self, request: web.Request) -> web.Response:
        self.residency.expire()
        now = datetime.now(UTC)
        running = []
        for name in self.residency.loaded:
            if name not in self.models:
                continue
            left = self.residency.expires_in(name)
            # ollama shows a model kept forever as expiring centuries from now.
            expires = now + (timedelta(days=365 * 300) if left is None else timedelta(seconds=left))
            entry = {k: v for k, v in self.models[name].items() if k != "modified_at"}
            running.append(
                {**entry, "expires_at": expires.isoformat().replace("+00:00", "Z"), "size_vram": 0}
            )
        return web.json_response({"models": running})

    async def _pull(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        name = str(body.get("model") or body.get("name") or "")
        model = normalize(name)
        missing = self.pullable is not None and model not in self.pullable
        if body.get("stream", True) is False:
            if missing:
                return _error(500, PULL_NOT_FOUND_MESSAGE)
            self.add_model(model)
            return web.json_response({"status": "success"})
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await _line(response, {"status": "pulling manifest"})
        if missing:
            await _line(response, {"error": PULL_NOT_FOUND_MESSAGE})
            await response.write_eof()
            return response
        digest = "sha256:" + hashlib.sha256(model.encode()).hexdigest()
        total = 4_000_000
        for completed in range(0, total + 1, total // 4):
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            status = f"pulling {digest[7:19]}"
            line = {"status": status, "digest": digest, "total": total, "completed": completed}
            await _line(response, line)
        await _line(response, {"status": "verifying sha256 digest"})
        await _line(response, {"status": "writing manifest"})
        self.add_model(model)
        await _line(response, {"status": "success"})
        await response.write_eof()
        return response

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION})

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.ollama_server",
        description="A fake ollama server for trying sparring without ollama.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument(
        "--model", action="append", help="a model to serve (repeatable; default qwen:0.5b)"
    )
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds per token")
    parser.add_argument("--parallel", type=int, default=None, help="concurrent replies served")
    parser.add_argument(
        "--concede-after", type=int, default=3, help="own turns before 'I lost' (0: never)"
    )
    parser.add_argument("--max-loaded", type=int, default=None, help="models held at once")
    parser.add_argument("--load-delay", type=float, default=0.0, help="seconds per model load")
    args = parser.parse_args(argv)

    async def serve() -> None:
        fake = FakeOllama(
            args.model or ["qwen:0.5b"],
            token_delay=args.token_delay,
            parallel=args.parallel,
            concede_after=args.concede_after or None,
            host=args.host,
            port=args.port,
            max_loaded=args.max_loaded,
            load_delay=args.load_delay,
        )
        async with fake:
            print(f"fake ollama at {fake.url} serving {', '.join(fake.models)} (Ctrl-C stops)")
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
