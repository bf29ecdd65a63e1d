"""A model bound to an engine: the one way the runner calls a model.

Binding an agent's model (:meth:`runner.model.pool.BackendPool.bind`) gives a
:class:`Model`: its backend and why that engine was chosen, the semaphore of its
connection key (shared by every model on the same server or loaded engine), the
timeouts and the retry policy of the run, and what the engine said about the model in
the preflight, and where its caller orders requests (a gate), that order.
``model.generate(request)`` applies all of them, so a caller passes a
request and, if it wants them, callbacks; nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from agents.backends import Choice
from agents.backends.base import Backend, ChatRequest, ModelInfo, Timeouts
from agents.errors import BackendError
from runner.model.generate import DeltaCallback, Generation, RetryPolicy, generate

RetryCallback = Callable[[BackendError, int, float], None]


class Gate(Protocol):
    """Decides when a request of a model may go to its server (a tournament's order of
    turns on a server that holds one model: :class:`runner.tournament.turns.TurnGate`)."""

    def turn(self, model: str) -> AbstractAsyncContextManager[None]: ...


@dataclass(slots=True, eq=False)
class Model:
    name: str
    backend: Backend
    choice: Choice  # which engine, and why
    limit: asyncio.Semaphore  # the connection key's: requests in flight on its server
    timeouts: Timeouts
    retry: RetryPolicy
    info: ModelInfo | None = None  # what the engine reported in the preflight
    gate: Gate | None = None  # held around each request, retries included

    @property
    def connection_key(self) -> str:
        return self.backend.connection_key(self.name)

    async def generate(
        self,
        request: ChatRequest,
        *,
        on_delta: DeltaCallback | None = None,
        on_retry: RetryCallback | None = None,
    ) -> Generation:
        """One reply to ``request`` (which names this model), under this model's policy:
        see :func:`runner.model.generate.generate`."""
        if self.gate is None:
            return await self._generate(request, on_delta, on_retry)
        async with self.gate.turn(self.name):
            return await self._generate(request, on_delta, on_retry)

    async def _generate(
        self,
        request: ChatRequest,
        on_delta: DeltaCallback | None,
        on_retry: RetryCallback | None,
    ) -> Generation:
        return await generate(
            self.backend,
            request,
            timeouts=self.timeouts,
            retry=self.retry,
            limit=self.limit,
            on_delta=on_delta,
            on_retry=on_retry,
        )
