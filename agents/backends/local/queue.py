"""The order in which one loaded model serves the requests queued for it.

A model generates one reply at a time. When several conversations' requests wait for it
(``--concurrency`` above 1), it serves first the one whose context is already loaded (no
swap), then the oldest conversation's, so conversations finish one after another and
results arrive while the rest still run, rather than all advancing a turn at a time and
finishing together. A request passed over ``MAX_PASSES`` times goes next whatever its
age, so a young conversation waits a bounded number of turns, never for its timeout.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

MAX_PASSES = 8
# Conversations whose age is remembered; the oldest names go first (long finished).
REMEMBERED = 4096

T = TypeVar("T")


def conversation_of(session: str | None) -> str | None:
    """The conversation a session belongs to: sessions are ``<conversation>/<agent>``."""
    return session.partition("/")[0] if session else None


@dataclass(eq=False)
class _Entry(Generic[T]):
    item: T
    session: str | None
    age: int  # rank of its conversation's first request
    seq: int  # arrival order
    passes: int = field(default=0)


class JobQueue(Generic[T]):
    """A blocking queue for one worker thread, ordered as the module docstring says."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._entries: list[_Entry[T]] = []
        self._ages: OrderedDict[str, int] = OrderedDict()
        self._counter = itertools.count()
        self._closed = False

    def put(self, item: T, session: str | None) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the queue is closed")
            seq = next(self._counter)
            self._entries.append(_Entry(item, session, self._age(session, seq), seq))
            self._cond.notify()

    def _age(self, session: str | None, seq: int) -> int:
        conversation = conversation_of(session)
        if conversation is None:
            return seq
        age = self._ages.get(conversation)
        if age is None:
            age = self._ages[conversation] = seq
            while len(self._ages) > REMEMBERED:
                self._ages.popitem(last=False)
        return age

    def take(self, resident: str | None) -> T | None:
        """The next item, blocking until there is one; None once closed and empty."""
        with self._cond:
            while not self._entries and not self._closed:
                self._cond.wait()
            if not self._entries:
                return None
            chosen = min(self._entries, key=lambda e: _rank(e, resident))
            self._entries.remove(chosen)
            for entry in self._entries:
                if entry.seq < chosen.seq:
                    entry.passes += 1
            return chosen.item

    def close(self) -> list[T]:
        """Refuse new items and wake the worker; returns what was still queued (kept)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            return [entry.item for entry in self._entries]

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)


def _rank(entry: _Entry[T], resident: str | None) -> tuple[int, int, int, int]:
    overdue = entry.passes >= MAX_PASSES
    loaded = entry.session is not None and entry.session == resident
    return (0 if overdue else 1, 0 if loaded else 1, entry.age, entry.seq)
