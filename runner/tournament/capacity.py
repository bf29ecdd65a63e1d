"""How many models a server holds at once, learned from what the server says.

ollama publishes no such number: it follows from OLLAMA_MAX_LOADED_MODELS, the memory and
the models' sizes, and it changes when they change. What the server does say is which
models it holds now, with their expiry (/api/ps), and how long a reply spent loading its
model. A tournament reads both and counts only its own models (the entrants' and the
judge's; other clients' models come and go as the server sees fit):

- ``at_least``: the most of them listed at once. The server held that many.
- ``at_most``: one of them vanished from the listing before its expiry while another one
  was being loaded: an eviction, so the server holds no more than were loaded just
  before. A model that vanished after its expiry expired, which says nothing.

When the two meet, the number is known. Until then the scheduler keeps one model more than
``at_least`` in play, loaded only while nothing runs on that server, so that learning costs
no load beyond the one the scheduler would have made anyway. Seeing more at once than
``at_most`` means the server changed: the bound is dropped and learned again.

What was learned is kept in the tournament folder (``servers.json``, written whole) so
that a resumed run starts from it and ``tournament status`` can say it; it is never part
of the results, whose exactly-once lines it does not touch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.backends.base import LoadedModel
from runner.files import write_whole
from runner.terminal import printable

LEARNED = "servers.json"
EVENTS_KEPT = 12  # the latest things learned per server, for status
OTHERS_KEPT = 5  # other clients' models seen, named in status
NAME_CHARS = 80  # a server's model names are its own text: shortened for messages


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ordinal(n: int) -> str:
    words = {2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth"}
    return f"a {words[n]} model" if n in words else f"model number {n}"


def _models(n: int) -> str:
    return f"{n} model" if n == 1 else f"{n} models"


def _name(text: str) -> str:
    text = printable(text)
    return text if len(text) <= NAME_CHARS else text[: NAME_CHARS - 3] + "..."


def _expired(expires_at: datetime | None, at: datetime) -> bool:
    """Whether a model listed with ``expires_at`` may have unloaded by itself by ``at``
    (its expiry only moves later as it is used, so before it, it was evicted)."""
    return expires_at is not None and at >= expires_at


@dataclass(slots=True)
class Event:
    at: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"at": self.at, "text": self.text}


@dataclass(slots=True)
class Capacity:
    """What one server was seen to hold; ``holds`` once it is known."""

    server: str
    backend: str
    readable: bool  # the server says what it holds
    at_least: int = 0
    at_most: int | None = None
    override: int | None = None  # --max-loaded or the file's max_loaded
    override_by: str | None = None
    assumed: int = 3  # what a server that cannot say is scheduled as holding
    loads: int = 0  # loads the server made for this tournament, in all runs
    learned: Event | None = None  # what settled (or last moved) the number
    events: list[Event] = field(default_factory=list)
    # Not kept: this run's view of the server.
    run_loads: int = 0
    listed: dict[str, datetime | None] | None = None  # our models -> expiry, last listing
    unloaded: set[str] = field(default_factory=set)  # unloaded by us since that listing
    others: set[str] = field(default_factory=set)  # other clients' models seen
    warned: bool = False

    # -- what it amounts to --------------------------------------------------------------

    @property
    def holds(self) -> int | None:
        """The number the scheduler keeps in play, when it is not learning."""
        if self.override is not None:
            return self.override
        if not self.readable:
            return self.assumed
        if self.at_most is not None and self.at_least >= self.at_most:
            return self.at_most
        return None

    def plan(self, models: int) -> tuple[int, int | None]:
        """(capacity, held) for the scheduler: held is None when the capacity is known."""
        holds = self.holds
        if holds is not None:
            return holds, None
        if self.at_least >= models:  # all of them fit: nothing to learn
            return self.at_least, None
        guess = max(2, self.at_least + 1)
        if self.at_most is not None:
            guess = min(guess, self.at_most)
        return guess, self.at_least

    def describe(self, models: int | None = None) -> str:
        """One line for the run's start and ``tournament status``."""
        if self.override is not None:
            text = f"kept at most {_models(self.override)} loaded ({self.override_by})"
            if self.at_most is not None and self.at_most < self.override:
                text += f"; it was seen to hold only {self.at_most}"
            return text
        if self.backend == "local":
            return (
                f"the embedded engine holds the models sparring loads: {self.assumed} at "
                "once (--max-loaded sets it)"
            )
        if not self.readable:
            return (
                f"which models it holds cannot be read ({self.backend}): scheduled without "
                f"residency knowledge, as holding {_models(self.assumed)} at once "
                "(--max-loaded sets it)"
            )
        return self._learned(models) + (
            f"; other clients' models seen: {', '.join(sorted(self.others)[:3])}"
            if self.others
            else ""
        )

    def _learned(self, models: int | None) -> str:
        holds = self.holds
        why = f" (learned: {self.learned.text} at {self.learned.at})" if self.learned else ""
        if holds is not None:
            return f"holds {_models(holds)}{why}"
        if models is not None and self.at_least >= models:
            return f"holds all {models} of the tournament's models at once{why}"
        if self.at_least == 0 and self.at_most is None:
            return "how many models it holds is learned while playing (from /api/ps)"
        upper = f", at most {self.at_most}" if self.at_most is not None else ""
        return f"holds at least {_models(self.at_least)}{upper}; still learning{why}"

    # -- learning ------------------------------------------------------------------------

    def _event(self, text: str, at: datetime, *, decisive: bool = False) -> None:
        event = Event(_stamp(at), text)
        self.events = [*self.events, event][-EVENTS_KEPT:]
        if decisive:
            self.learned = event

    def released(self, model: str) -> None:
        """We unloaded ``model``: its absence from the next listing is no eviction."""
        self.unloaded.add(model)

    def replied(self, load_ms: float, threshold: float) -> bool:
        """A reply's load time: True when the server loaded its model for it."""
        if load_ms < threshold:
            return False
        self.loads += 1
        self.run_loads += 1
        return True

    def observe(
        self,
        listing: Iterable[LoadedModel],
        ours: Mapping[str, str],
        *,
        loaded: str | None = None,
        at: datetime | None = None,
    ) -> set[str]:
        """Learn from a listing (``ours``: the server's names of the tournament's models
        -> the tournament's); ``loaded``: the model we just asked it to load. Returns
        our models it holds now."""
        at = at or _now()
        now: dict[str, datetime | None] = {}
        for entry in listing:
            model = ours.get(entry.name)
            if model is None:
                self.others.add(_name(entry.name))
            else:
                now[model] = entry.expires_at
        if self.listed is None:  # the first look: what is there already counts as held
            self._held(now, at, "listed before play")
            self.listed = now
            self.unloaded.clear()
            return set(now)
        before = set(self.listed) - self.unloaded
        vanished = before - set(now)
        evicted = sorted(m for m in vanished if not _expired(self.listed[m], at))
        appeared = set(now) - before
        if loaded is not None and loaded in appeared:
            self.loads += 1
            self.run_loads += 1
        if evicted and appeared:
            tried = len(before | appeared)
            bound = tried - 1
            if self.at_most is None or bound < self.at_most:
                self.at_most = bound
                self.at_least = min(self.at_least, bound)
                newcomer = sorted(appeared)[0]
                self._event(
                    f"{', '.join(evicted)} evicted when {_ordinal(tried)} ({newcomer}) loaded",
                    at,
                    decisive=True,
                )
        elif evicted:
            self._event(f"{', '.join(evicted)} evicted (another client's load)", at)
        self._held(now, at, "listed at once")
        self.listed = now
        self.unloaded.clear()
        return set(now)

    def _held(self, now: Mapping[str, datetime | None], at: datetime, how: str) -> None:
        if len(now) <= self.at_least:
            return
        self.at_least = len(now)
        changed = self.at_most is not None and self.at_least > self.at_most
        if changed:
            self.at_most = None  # it holds more than before: learn the limit again
        self._event(
            f"{len(now)} of the tournament's models {how}"
            + ("; more than before, so its limit is learned again" if changed else ""),
            at,
            decisive=True,
        )

    # -- kept in the folder --------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "backend": self.backend,
            "readable": self.readable,
            "holds": self.holds,
            "at_least": self.at_least,
            "at_most": self.at_most,
            "override": self.override,
            "override_by": self.override_by,
            "assumed": self.assumed,
            "loads": self.loads,
            "learned": self.learned.to_dict() if self.learned else None,
            "events": [e.to_dict() for e in self.events],
            "others": sorted(self.others)[:OTHERS_KEPT],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Capacity:
        def event(value: Any) -> Event | None:
            if not isinstance(value, dict):
                return None
            return Event(str(value.get("at", "")), str(value.get("text", "")))

        def count(value: Any) -> int | None:
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        others = data.get("others")

        return cls(
            server=str(data.get("server", "")),
            backend=str(data.get("backend", "")),
            readable=bool(data.get("readable", False)),
            at_least=count(data.get("at_least")) or 0,
            at_most=count(data.get("at_most")),
            override=count(data.get("override")),
            override_by=data.get("override_by")
            if isinstance(data.get("override_by"), str)
            else None,
            assumed=count(data.get("assumed")) or 3,
            loads=count(data.get("loads")) or 0,
            learned=event(data.get("learned")),
            events=[e for e in map(event, data.get("events") or []) if e is not None],
            others={_name(str(n)) for n in others} if isinstance(others, list) else set(),
        )


def read_learned(folder: Path) -> dict[str, Capacity]:
    """What earlier runs learned, by server; nothing when the file is missing or unreadable
    (it is a cache of observations: a run learns again)."""
    try:
        data = json.loads((folder / LEARNED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, list):
        return {}
    found = {}
    for entry in servers:
        if isinstance(entry, dict) and isinstance(entry.get("server"), str):
            capacity = Capacity.from_dict(entry)
            found[capacity.server] = capacity
    return found


def write_learned(folder: Path, capacities: Iterable[Capacity]) -> None:
    """Keep what was learned: written whole (a reader sees the old file or the new one)."""
    data = {"servers": [c.to_dict() for c in capacities], "written_at": _stamp(_now())}
    write_whole(folder / LEARNED, json.dumps(data, indent=2) + "\n")
