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

Where the server says what it holds (ollama), loads are the caller's to make: a model
chosen to load waits in ``loading`` until the caller has loaded it and says what the server
lists (:meth:`Scheduler.loaded`); elsewhere a model counts as loaded once chosen and its
first request loads it. While the caller is still learning how many models a server
holds (``held``: the most it has been seen to hold; ``capacity`` then one more), room is
made only while nothing runs there, so that if the server evicts to make room, no running
game loses a model. A server that holds fewer models than a game
needs (one) swaps models on every turn: its games run a pairing at a time, all of a
pairing's games at once and in step (a game starts when the others turn to the model of its
first request), so each swap serves a turn of every one of them.
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
    first: str | None = None  # the model of its first request, where known


@dataclass(slots=True)
class Residency:
    """What one host has loaded, and which of it is in use."""

    capacity: int
    held: int | None = None  # learning: the most it was seen to hold; None: capacity known
    preload: bool = False  # the caller loads models (and confirms) before work needs them
    resident: set[str] = field(default_factory=set)
    loading: list[str] = field(default_factory=list)  # chosen, for the caller to load in order
    in_flight: str | None = None  # the one the caller is loading now
    loading_for: frozenset[str] = frozenset()  # the models of the work they are loaded for
    swapping: bool = False  # a block of games whose models the server cannot hold together
    current: str | None = None  # swapping: the model the block's games are on now
    busy: Counter[str] = field(default_factory=Counter)
    loads: list[str] = field(default_factory=list)  # every model chosen to load, in order
    last_used: dict[str, int] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return any(n > 0 for n in self.busy.values())


class Scheduler(Generic[T]):
    def __init__(self, hosts: Sequence[str], capacity: int, *, preload: Iterable[str] = ()) -> None:
        if capacity < 1:
            raise ValueError("a server holds at least one model")
        self.hosts = {host: Residency(capacity) for host in hosts}
        for host in preload:
            self.hosts[host].preload = True
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
        work = self._runnable(queue, here)
        if work is None and not here.loading and self._make_room(host, queue):
            if not here.preload:
                here.resident.update(here.loading)
                here.loading.clear()
            work = self._runnable(queue, here)
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
    def _runnable(queue: list[Work[T]], here: Residency) -> Work[T] | None:
        fits = [w for w in queue if w.models <= here.resident]
        if not here.swapping or not fits:
            return fits[0] if fits else None
        # The server swaps models per turn and serves requests in order: a game starts in
        # step with the running ones (its first request for the model they are turning
        # to), so that every swap serves a turn of each of them.
        if here.running:
            return next((w for w in fits if w.first in (None, here.current)), None)
        work = next((w for w in fits if w.first == here.current), fits[0])
        here.current = work.first
        return work

    def _elsewhere(self, host: str, models: frozenset[str]) -> bool:
        return any(models <= r.resident for h, r in self.hosts.items() if h != host)

    def _make_room(self, host: str, queue: list[Work[T]]) -> bool:
        """Evict and load on ``host`` so that some queued work can run; False: must wait."""
        here = self.hosts[host]
        if here.held is not None and here.running:
            # Learning: room is made only while nothing runs, so that if the server evicts
            # to make room, no running game loses a model, and the load teaches something.
            return False
        capacity = here.capacity
        sets = Counter(w.models for w in queue)
        if all(len(models) > capacity for models in sets):
            return self._swap_block(host, sets)
        needed = Counter(m for w in queue for m in w.models)
        best: tuple[tuple[float, int, int], frozenset[str], set[str], list[str]] | None = None
        for models, count in sets.items():
            if self._elsewhere(host, models) and len(self.hosts) > 1:
                continue  # affinity: the host holding these models takes this work
            missing = models - here.resident
            idle = [m for m in here.resident if here.busy[m] == 0 and m not in models]
            free = capacity - len(here.resident)
            evict_count = max(0, len(missing) - free)
            if not missing or evict_count > len(idle) or len(models) > capacity:
                continue
            # Evict what the remaining work needs least, and of that what was used longest ago.
            victims = sorted(idle, key=lambda m: (needed[m], here.last_used.get(m, 0)))
            victims = victims[:evict_count]
            after = (here.resident - set(victims)) | missing
            gained = sum(c for s, c in sets.items() if s <= after and not s <= here.resident)
            lost = sum(needed[v] for v in victims)
            score = (gained / len(missing), -lost, count)
            if best is None or score > best[0]:
                best = (score, models, set(missing), victims)
        if best is None:
            return False
        _, here.loading_for, loading, victims = best
        here.swapping = False
        for victim in victims:
            here.resident.discard(victim)
            self.evicted.append((host, victim))
        for model in sorted(loading):
            here.loading.append(model)
            here.loads.append(model)
        return True

    def _swap_block(self, host: str, sets: Counter[frozenset[str]]) -> bool:
        """On a server that cannot hold a game's models together, start the next pairing's
        block (once the last one has finished): the server loads a model per turn."""
        here = self.hosts[host]
        if here.running or here.loading:
            return False
        candidates = [s for s in sets if len(self.hosts) == 1 or not self._elsewhere(host, s)]
        if not candidates:
            return False
        # A pairing sharing a model with the last block may start without a swap.
        block = max(candidates, key=lambda s: (len(s & here.resident), sets[s], sorted(s)))
        for victim in sorted(here.resident - block):
            self.evicted.append((host, victim))
        here.loads.extend(sorted(block - here.resident))
        here.resident = set(block)
        here.swapping = True
        return True

    # -- what the caller learns ----------------------------------------------------------

    def turn(self, host: str, model: str) -> bool:
        """A game on ``host`` asks ``model`` for a turn; True when, in a block the server
        swaps models for, queued games may now start in step (hand out work again)."""
        here = self.hosts[host]
        if not here.swapping:
            return False
        here.current = model
        return any(w.first == model and w.models <= here.resident for w in self._queue())

    def start_load(self, host: str) -> str | None:
        """The next model the caller should load on ``host`` (one at a time), or None."""
        here = self.hosts[host]
        if here.in_flight is not None or not here.loading:
            return None
        here.in_flight = here.loading[0]
        return here.in_flight

    def loaded(self, host: str, model: str, listed: set[str] | None) -> None:
        """The caller loaded ``model``; ``listed``: what the server says it holds now of the
        scheduler's models (None: it could not say)."""
        here = self.hosts[host]
        here.in_flight = None
        if model in here.loading:
            here.loading.remove(model)
        here.resident.add(model)
        if listed is not None:
            self.observe(host, listed | {model})

    def observe(self, host: str, listed: set[str]) -> None:
        """What the server holds now: models it evicted or let expire are no longer counted
        as loaded (work needing them waits for a new load)."""
        here = self.hosts[host]
        if not here.swapping:  # else the server swaps models per turn, by itself
            here.resident = set(listed)
        here.loading = [m for m in here.loading if m not in here.resident]

    def set_capacity(self, host: str, capacity: int, held: int | None = None) -> None:
        """How many models ``host`` holds (``held``: learning, seen to hold that many)."""
        here = self.hosts[host]
        if capacity < here.capacity and here.loading:
            # Chosen for more room than there is: choose again.
            here.loading = [m for m in here.loading if m == here.in_flight]
        here.capacity, here.held = max(1, capacity), held

    def expendable(self, host: str) -> list[str]:
        """``host``'s idle models but those of the work being loaded for, the one the
        remaining work needs least first: the order in which the scheduler evicts."""
        here = self.hosts[host]
        needed = Counter(m for w in self._queue() for m in w.models)
        idle = [m for m in here.resident if here.busy[m] == 0 and m not in here.loading_for]
        return sorted(idle, key=lambda m: (needed[m], here.last_used.get(m, 0)))

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


def turn_lower_bound(games: Iterable[tuple[frozenset[str], int]]) -> int:
    """Fewest loads any order of these games (their models, their generated turns) can
    need on a server that holds one model at once.

    A game's turns alternate between its two models, so the server's loads, restricted to
    one pairing's two models, must alternate at least as often as the pairing's longest
    game has turns. A load of model m changes, for each other model x, whether m or x came
    last: at most ``models - 1`` pairings gain an alternation per load, the first load
    none. Reaching this needs every load to serve turns of that many pairings at once.
    """
    longest: dict[frozenset[str], int] = {}
    everything: set[str] = set()
    for pair, turns in games:
        everything |= pair
        if len(pair) == 2:
            longest[pair] = max(longest.get(pair, 0), turns)
    bound = len(everything)
    if longest:
        paired = {m for p in longest for m in p}
        alternations = sum(max(0, t - 1) for t in longest.values())
        bound = max(bound, *longest.values(), 1 + math.ceil(alternations / (len(paired) - 1)))
    return bound


def pairing_block_loads(games: Iterable[tuple[frozenset[str], int]]) -> int:
    """Loads of playing these games (their models, their generated turns) a pairing at a
    time on a server that holds one model, as the scheduler does: one per turn of each
    pairing's longest game, one more as its two seat orders open on different models."""
    longest: dict[frozenset[str], int] = {}
    for pair, turns in games:
        if len(pair) == 2:
            longest[pair] = max(longest.get(pair, 0), turns)
    return sum(turns + 1 for turns in longest.values())
