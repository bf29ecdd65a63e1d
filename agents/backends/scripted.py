"""A scripted backend: replies come from a script instead of a model.

It implements the same interface as the real backends, so orchestrator tests and
``bench/overhead.py`` exercise exactly the code a real run does, minus the network.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterable

from agents.backends.base import ChatEvent, ChatRequest, Delta, Final, ModelInfo, ProgressCallback
from agents.backends.config import FIELDS
from agents.errors import BackendError, ModelNotFound

Reply = str | BackendError | Callable[[ChatRequest], str]


class ScriptedBackend:
    """Answers from per-model queues of replies, or from one function for every request.

    A reply is a string (streamed word by word), a :class:`BackendError` (raised, so retry
    paths can be tested) or a callable taking the request and returning a string. When a
    model's queue is empty, ``fallback`` answers.
    """

    name = "scripted"
    supported_options = FIELDS

    def __init__(
        self,
        script: dict[str, Iterable[Reply]] | None = None,
        *,
        fallback: Callable[[ChatRequest], str] | None = None,
        models: Iterable[str] | None = None,
        delay: float = 0.0,
        concurrency: int = 1,
        host: str = "scripted",
    ) -> None:
        self.host = host
        self._queues: dict[str, deque[Reply]] = defaultdict(deque)
        for model, replies in (script or {}).items():
            self._queues[model].extend(replies)
        self._fallback = fallback or (lambda req: f"reply {len(req.messages)}")
        self._models = set(models) if models is not None else None
        self._delay = delay
        self._concurrency = concurrency
        self.can_pull = models is not None
        self.conversations_per_slot = 2
        self.requests: list[ChatRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.released: list[str] = []
        self.closed = False

    def connection_key(self, model: str) -> str:
        return f"scripted|{self.host}"

    def default_concurrency(self) -> int:
        return self._concurrency

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self._models is not None and request.model not in self._models:
                raise ModelNotFound("model not found", backend=self.name, model=request.model)
            queue = self._queues.get(request.model)
            reply: Reply = queue.popleft() if queue else self._fallback
            if isinstance(reply, BackendError):
                raise reply
            text = reply(request) if callable(reply) else reply
            if self._delay:
                await asyncio.sleep(self._delay)
            words = text.split(" ")
            # A word stands for a token: num_predict stops the reply as an engine would.
            limit = request.config.num_predict
            cut = limit is not None and 0 < limit < len(words)
            if cut:
                words = words[:limit]
            for i, word in enumerate(words):
                yield Delta(word if i == 0 else " " + word)
            prompt_tokens = sum(len(m["content"].split()) for m in request.messages)
            yield Final(
                prompt_tokens=prompt_tokens,
                completion_tokens=len(words),
                done_reason="length" if cut else "stop",
                host=self.host,
            )
        finally:
            self.in_flight -= 1

    async def list_models(self) -> list[ModelInfo]:
        names = self._models if self._models is not None else set(self._queues)
        return [
            ModelInfo(name=n, digest="sha256:" + hashlib.sha256(n.encode()).hexdigest())
            for n in sorted(names)
        ]

    async def find_model(self, name: str) -> ModelInfo:
        for info in await self.list_models():
            if info.name == name:
                return info
        if self._models is None:
            return ModelInfo(name=name)
        raise ModelNotFound(
            "model not found", backend=self.name, host=self.host, model=name, hint="pull it"
        )

    async def pull(self, model: str, progress: ProgressCallback) -> None:
        if self._models is None:
            return
        progress("pulling", 0, 1)
        self._models.add(model)
        progress("success", 1, 1)

    async def release(self, model: str) -> None:
        self.released.append(model)

    async def aclose(self) -> None:
        self.closed = True
