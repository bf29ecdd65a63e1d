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
game loses a model. A server that holds fewer models than a game needs (one) swaps models
on every turn: its games are all handed out at once (``swapping``), for the caller to
order their turns a model at a time (:mod:`runner.tournament.turns`), so that each swap
serves a turn of every game waiting for that model; its judgings wait until those games
have finished, and then run as a block of their own.
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
    held: int | None = None  # learning: the most it was seen to hold; None: capacity known
    preload: bool = False  # the caller loads models (and confirms) before work needs them
    resident: set[str] = field(default_factory=set)
    loading: list[str] = field(default_factory=list)  # chosen, for the caller to load in order
    in_flight: str | None = None  # the one the caller is loading now
    loading_for: frozenset[str] = frozenset()  # the models of the work they are loaded for
    swapping: bool = False  # a block of games whose models the server cannot hold together
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
        if here.swapping and queue is self.judgings and here.running:
            return None  # the judge's block waits for the games the server swaps models for
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
        return next((w for w in queue if w.models <= here.resident), None)

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
            if here.held is None:
                return self._swap_block(host, sets)
            # Learning: try to hold a whole game's models (a debate's chair and jury too);
            # what the server evicts while they load tells whether it can.
            capacity = min(len(models) for models in sets)
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
        """On a server that cannot hold a game's models together, hand out every game it
        is to play at once (once its last work has finished): the server loads a model per
        turn, and the caller orders the turns a model at a time."""
        here = self.hosts[host]
        if here.running or here.loading:
            return False
        candidates = [s for s in sets if len(self.hosts) == 1 or not self._elsewhere(host, s)]
        if not candidates:
            return False
        block = set().union(*candidates)
        for victim in sorted(here.resident - block):
            self.evicted.append((host, victim))
        here.loads.extend(sorted(block - here.resident))
        here.resident = block
        here.swapping = True
        return True

    # -- what the caller learns ----------------------------------------------------------

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


def turn_lower_bound(games: Iterable[tuple[frozenset[str], str | None, int]]) -> int:
    """Fewest loads any order of these games can need on a server that holds one model at
    once; a game is its models, the model of its first generated turn (None: not known),
    and its generated turns.

    A game's turns alternate between its two models, so the server's loads, restricted to
    one pairing's two models, must hold each of its games' turns in order: as many runs of
    one model as the pairing's longest game has turns, and one more when its two seat
    orders both open games that long (one opens on each model). Two bounds follow. A load
    of model m starts a run in each pairing of m's whose last load was not m: at most as
    many runs per load as the model with the most pairings has pairings. And a pairing of
    models loaded s and t times has at most ``min(s + t, 2 min(s, t) + 1)`` runs, so each
    model is loaded at least half its pairings' runs (less one, rounded up), and where two
    models' least loads fall short of their pairing's runs by one, one of them is loaded
    once more: as many more loads as the fewest models that cover those pairings.
    """
    longest: dict[frozenset[str], dict[str | None, int]] = {}
    everything: set[str] = set()
    for pair, first, turns in games:
        everything |= pair
        if len(pair) == 2 and turns > 0:
            opened = longest.setdefault(pair, {})
            opened[first] = max(opened.get(first, 0), turns)
    if not longest:
        return len(everything)
    runs: dict[frozenset[str], int] = {}
    for pair, opened in longest.items():
        known = [opened.get(m, 0) for m in sorted(pair)]
        most = max(opened.values())
        both = known[0] == known[1] == most  # each seat order opens a longest game
        runs[pair] = most + (1 if both else 0)
    degree = Counter(m for pair in runs for m in pair)
    per_load = math.ceil(sum(runs.values()) / max(degree.values()))
    least = dict.fromkeys(everything, 1)
    for pair, r in runs.items():
        for m in pair:
            least[m] = max(least[m], math.ceil((r - 1) / 2))
    short = [tuple(sorted(p)) for p, r in runs.items() if sum(least[m] for m in p) < r]
    return max(per_load, max(runs.values()), sum(least.values()) + _cover(short))


def _cover(edges: list[tuple[str, ...]], exact_up_to: int = 14) -> int:
    """The fewest vertices touching every edge (with more vertices than ``exact_up_to``,
    a matching's size: no more than that, and a bound all the same)."""
    if len({v for e in edges for v in e}) > exact_up_to:
        matched: set[str] = set()
        size = 0
        for a, b in edges:
            if a not in matched and b not in matched:
                matched |= {a, b}
                size += 1
        return size
    if not edges:
        return 0
    degree = Counter(v for e in edges for v in e)
    v = max(degree, key=lambda m: (degree[m], m))
    neighbours = {u for e in edges if v in e for u in e if u != v}
    take_v = 1 + _cover([e for e in edges if v not in e], exact_up_to)
    if degree[v] == 1:
        return take_v  # the edges are apart: a vertex of each
    rest = [e for e in edges if not (set(e) & (neighbours | {v}))]
    return min(take_v, len(neighbours) + _cover(rest, exact_up_to))
