"""Saved conversation contexts of the embedded engine, within one memory budget.

A loaded model holds one conversation side's context at a time; when another side's
turn comes, the engine saves the first one here (llama.cpp's sequence state: its KV cells,
a few MB to a few tens of MB) and restores it when that side speaks again. Every loaded
model's saved contexts share one budget, set by ``SPARRING_LOCAL_STATE_MB`` (MiB) or, by
default, an eighth of the memory the process may use (a container's limit included), up
to 2 GiB; the least recently used go first, and a side whose context was dropped re-reads
its prompt on its next turn (a *miss*).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agents.errors import ConfigError

STATE_MB_ENV = "SPARRING_LOCAL_STATE_MB"
MIB = 1 << 20
DEFAULT_CAP = 2048 * MIB
FALLBACK = 512 * MIB
# Names of dropped contexts remembered, to tell a miss from a side's first turn.
FORGOTTEN_NAMES = 65536


# A container's memory limit (cgroup v2), which physical memory does not show.
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def default_budget() -> int:
    """An eighth of the memory this process may use, at most 2 GiB (512 MiB where unknown)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return FALLBACK
    try:
        limit = CGROUP_MEMORY_MAX.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        limit = "max"
    if limit.isdigit():
        total = min(total, int(limit))
    return min(DEFAULT_CAP, total // 8) if total > 0 else FALLBACK


def budget_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The budget in bytes: ``SPARRING_LOCAL_STATE_MB`` if set, else :func:`default_budget`."""
    raw = (os.environ if environ is None else environ).get(STATE_MB_ENV, "").strip()
    if not raw:
        return default_budget()
    try:
        mib = float(raw)
    except ValueError:
        mib = -1.0
    if not mib >= 0 or mib == float("inf"):
        raise ConfigError(
            f"{STATE_MB_ENV}={raw!r}: expected a number of MiB (0 keeps no saved contexts)"
        )
    return int(mib * MIB)


@dataclass(frozen=True, eq=False)
class SavedState:
    """One conversation side's context as llama.cpp saved it, and how it was evaluated."""

    tokens: tuple[int, ...]  # the tokens its cells hold
    starts: tuple[int, ...]  # the piece starts they were evaluated with
    data: bytearray  # llama_state_seq_get_data's bytes (a ctypes view needs them writable)

    @property
    def nbytes(self) -> int:
        return len(self.data)


Key = tuple[Hashable, str]  # (owner: the loaded model, session)


class StateStore:
    """Saved contexts keyed by (owner, session), least recently used evicted first."""

    def __init__(self, budget: int) -> None:
        self._lock = threading.Lock()
        self._states: OrderedDict[Key, SavedState] = OrderedDict()
        self._dropped: OrderedDict[Key, None] = OrderedDict()
        self._budget = budget
        self.held = 0  # bytes
        self.evictions = 0

    @property
    def budget(self) -> int:
        return self._budget

    @budget.setter
    def budget(self, value: int) -> None:
        with self._lock:
            self._budget = value
            self._shrink(self._budget)

    def put(self, owner: Hashable, session: str, state: SavedState) -> None:
        """Keep ``state``, evicting others to fit; one larger than the budget is dropped."""
        key = (owner, session)
        with self._lock:
            self._discard(key)
            if state.nbytes > self._budget:
                self._forget(key)
                return
            self._shrink(self._budget - state.nbytes)
            self._states[key] = state
            self.held += state.nbytes
            self._dropped.pop(key, None)

    def take(self, owner: Hashable, session: str) -> SavedState | None:
        """Remove and return a saved context (it is about to be loaded), or None."""
        with self._lock:
            state = self._states.pop((owner, session), None)
            if state is not None:
                self.held -= state.nbytes
            return state

    def drop(self, owner: Hashable, session: str) -> None:
        """Forget one side's context as lost (an error, nothing worth saving)."""
        with self._lock:
            self._discard((owner, session))
            self._forget((owner, session))

    def was_dropped(self, owner: Hashable, session: str) -> bool:
        """Whether a context of this side was kept once and is gone (evicted or too big)."""
        with self._lock:
            return (owner, session) in self._dropped

    def forget_owner(self, owner: Hashable) -> None:
        """Drop every context of one model (it is being unloaded)."""
        with self._lock:
            for key in [k for k in self._states if k[0] == owner]:
                self._discard(key)
            for key in [k for k in self._dropped if k[0] == owner]:
                del self._dropped[key]

    def sessions(self, owner: Hashable) -> Sequence[str]:
        with self._lock:
            return [session for o, session in self._states if o == owner]

    def _shrink(self, room: int) -> None:
        while self._states and self.held > room:
            key, state = self._states.popitem(last=False)
            self.held -= state.nbytes
            self.evictions += 1
            self._forget(key)

    def _discard(self, key: Key) -> None:
        state = self._states.pop(key, None)
        if state is not None:
            self.held -= state.nbytes

    def _forget(self, key: Key) -> None:
        self._dropped[key] = None
        self._dropped.move_to_end(key)
        while len(self._dropped) > FORGOTTEN_NAMES:
            self._dropped.popitem(last=False)
