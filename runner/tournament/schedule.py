"""Ordering work by the models it needs, for servers that hold only a few models at once.

A server keeps ``capacity`` models loaded (ollama's OLLAMA_MAX_LOADED_MODELS, 3 on CPU);
loading one costs seconds. Work (a game needs its two entrants' models; a judging needs
the judge's) is handed out only when every model it needs is resident on the host asking,
so requests in flight never need more models than the server keeps. When nothing runnable
is left, the scheduler makes room: it evicts idle models that the remaining work needs
least and loads the fewest models that make the most work runnable, so consecutive blocks
share models and the number of loads approaches the lower bound. Judgings wait until no
game is left to start, then run as a block of their own: the judge is loaded once.

Several hosts share the work with affinity: a host takes work resident on it first and
leaves work resident on another host to that host.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Work(Generic[T]):
    item: T
    models: frozenset[str]
    judging: bool = False


@dataclass(slots=True)
class Residency:
    """What one host has loaded, and which of it is in use."""

    capacity: int
    resident: set[str] = field(default_factory=set)
    busy: Counter[str] = field(default_factory=Counter)
    loads: list[str] = field(default_factory=list)  # every model loaded, in order
    last_used: dict[str, int] = field(default_factory=dict)


class Scheduler(Generic[T]):
    def __init__(self, hosts: Sequence[str], capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a server holds at least one model")
        self.hosts = {host: Residency(capacity) for host in hosts}
        self.games: list[Work[T]] = []
        self.judgings: list[Work[T]] = []
        self.evicted: list[tuple[str, str]] = []  # (host, model): for the caller to release
        self._clock = 0

    # -- queue -------------------------------------------------------------------------

    def add(self, work: Work[T]) -> None:
        (self.judgings if work.judging else self.games).append(work)

    def __len__(self) -> int:
        return len(self.games) + len(self.judgings)

    def _queue(self) -> list[Work[T]]:
        # Judgings wait for every game to have started: the judge is loaded once, last.
        return self.games if self.games else self.judgings

    # -- handing out -------------------------------------------------------------------

    def next(self, host: str) -> Work[T] | None:
        """Work ``host`` can run now (making room if it must), or None: wait for running
        work to finish, or nothing is left."""
        queue = self._queue()
        if not queue:
            return None
        here = self.hosts[host]
        work = self._runnable(queue, here.resident)
        if work is None and self._make_room(host, queue):
            work = self._runnable(queue, here.resident)
        if work is not None:
            queue.remove(work)
            self._clock += 1
            for model in work.models:
                here.busy[model] += 1
                here.last_used[model] = self._clock
        return work

    def finished(self, host: str, work: Work[T]) -> None:
        busy = self.hosts[host].busy
        for model in work.models:
            busy[model] -= 1

    def requeue(self, work: Work[T]) -> None:
        """Hand finished ``work`` out again (its server was down)."""
        (self.judgings if work.judging else self.games).insert(0, work)

    @staticmethod
    def _runnable(queue: list[Work[T]], resident: set[str]) -> Work[T] | None:
        return next((w for w in queue if w.models <= resident), None)

    def _elsewhere(self, host: str, models: frozenset[str]) -> bool:
        return any(models <= r.resident for h, r in self.hosts.items() if h != host)

    def _make_room(self, host: str, queue: list[Work[T]]) -> bool:
        """Evict and load on ``host`` so that some queued work can run; False: must wait."""
        here = self.hosts[host]
        sets = Counter(w.models for w in queue)
        needed = Counter(m for w in queue for m in w.models)
        best: tuple[tuple[float, int, int], set[str], list[str]] | None = None
        for models, count in sets.items():
            if self._elsewhere(host, models) and len(self.hosts) > 1:
                continue  # affinity: the host holding these models takes this work
            missing = models - here.resident
            idle = [m for m in here.resident if here.busy[m] == 0 and m not in models]
            free = here.capacity - len(here.resident)
            evict_count = max(0, len(missing) - free)
            if not missing or evict_count > len(idle) or len(models) > here.capacity:
                continue
            # Evict what the remaining work needs least, and of that what was used longest ago.
            victims = sorted(idle, key=lambda m: (needed[m], here.last_used.get(m, 0)))
            victims = victims[:evict_count]
            after = (here.resident - set(victims)) | missing
            gained = sum(c for s, c in sets.items() if s <= after and not s <= here.resident)
            lost = sum(needed[v] for v in victims)
            score = (gained / len(missing), -lost, count)
            if best is None or score > best[0]:
                best = (score, set(missing), victims)
        if best is None:
            return False
        _, loading, victims = best
        for victim in victims:
            here.resident.discard(victim)
            self.evicted.append((host, victim))
        for model in sorted(loading):
            here.resident.add(model)
            here.loads.append(model)
        return True

    def take_evictions(self) -> list[tuple[str, str]]:
        evicted, self.evicted = self.evicted, []
        return evicted

    @property
    def loads(self) -> int:
        return sum(len(r.loads) for r in self.hosts.values())

    def unneeded(self, host: str) -> list[str]:
        """Models loaded on ``host`` that no queued work needs: release them."""
        needed = {m for w in self.games + self.judgings for m in w.models}
        here = self.hosts[host]
        return sorted(m for m in here.resident if m not in needed and here.busy[m] == 0)

    def release(self, host: str, model: str) -> None:
        self.hosts[host].resident.discard(model)


def load_lower_bound(model_sets: Iterable[frozenset[str]], capacity: int) -> int:
    """Fewest model loads any order of this work can need on one server of ``capacity``.

    Every model is loaded at least once. Beyond that, every pair of models played together
    must be resident together once: the first ``capacity`` loads make at most
    C(capacity, 2) pairs resident, and each later load at most ``capacity - 1`` new ones.
    """
    sets = set(model_sets)
    models = {m for s in sets for m in s}
    pairs = sum(1 for s in sets if len(s) == 2)
    bound = len(models)
    if capacity >= 2 and len(models) > capacity:
        first = math.comb(capacity, 2)
        bound = max(bound, capacity + math.ceil(max(0, pairs - first) / (capacity - 1)))
    return bound
