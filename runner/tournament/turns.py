"""Turns of many games, one model at a time, for a server that holds one model.

Such a server loads a model for every turn of a game, since a game's turns alternate
between its two models. Left to itself, it serves requests as they arrive, and many games
in flight make it swap models on nearly every request. The gate lets requests of one model
through at a time: while some run, requests of the other models wait; once none run and
every game on the server is waiting, it turns to the model that was served longest ago,
and lets all of that model's waiting requests through together. The server then loads
each model once per round of the models, and each load serves a turn of every game then
waiting for that model: of every pairing with games in flight, in the best case.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class TurnGate:
    """Admits requests of one model at a time while ``active``; off, admits everything."""

    def __init__(self) -> None:
        self.active = False
        self.current: str | None = None  # the model whose requests go through now
        self.running = 0  # requests let through and not yet finished
        self.tasks = 0  # games (and judgings) in play on the server
        self.waiting: dict[str, list[asyncio.Future[None]]] = {}
        self.served: dict[str, int] = {}  # model -> when it was last turned to
        self.turns: list[str] = []  # every model turned to, in order
        self._clock = 0

    # -- the tasks that may ask ----------------------------------------------------------

    def enter(self) -> None:
        self.tasks += 1

    def leave(self) -> None:
        self.tasks -= 1
        self._turn()

    def set_active(self, active: bool) -> None:
        if active == self.active:
            return
        self.active = active
        if not active:  # everything waiting goes through
            self.current = None
            for model in list(self.waiting):
                self._admit(model)

    # -- requests ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def turn(self, model: str) -> AsyncIterator[None]:
        """Hold a request of ``model`` until its model's turn, for as long as it runs."""
        if not self.active:
            yield
            return
        if self.current is None:
            self._to(model)
        if model == self.current:
            self.running += 1  # its model is the server's: nothing to wait for
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiting.setdefault(model, []).append(waiter)
            self._turn()
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._done()  # let through as it was cancelled: it counted as running
                else:
                    self._forget(model, waiter)
                raise
        try:
            yield
        finally:
            self._done()

    def _done(self) -> None:
        self.running -= 1
        self._turn()

    def _forget(self, model: str, waiter: asyncio.Future[None]) -> None:
        queue = self.waiting.get(model, [])
        if waiter in queue:
            queue.remove(waiter)
        if not queue:
            self.waiting.pop(model, None)
        self._turn()

    def _turn(self) -> None:
        """Turn to the next model once nothing runs and every game waits."""
        if not self.active or self.running or not self.waiting:
            return
        if sum(len(q) for q in self.waiting.values()) < self.tasks:
            return  # a game between requests will ask soon, maybe for the current model
        model = min(self.waiting, key=lambda m: (self.served.get(m, -1), m))
        self._to(model)
        self._admit(model)

    def _to(self, model: str) -> None:
        self.current = model
        self._clock += 1
        self.served[model] = self._clock
        self.turns.append(model)

    def _admit(self, model: str) -> None:
        for waiter in self.waiting.pop(model, []):
            if not waiter.done():
                self.running += 1
                waiter.set_result(None)
