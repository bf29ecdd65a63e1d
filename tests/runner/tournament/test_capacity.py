"""Learning how many models a server holds from its listings: evictions bound it from
above, models held at once from below; expiry, other clients and our own unloads are no
evidence; what was learned survives in the folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.backends.base import LoadedModel
from runner.tournament.capacity import LEARNED, Capacity, read_learned, write_learned

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OURS = {f"m{i}:latest": f"m{i}" for i in range(1, 6)}


def listing(*names: str, expires: datetime | None = None) -> list[LoadedModel]:
    when = expires or T0 + timedelta(minutes=30)
    return [LoadedModel(name if ":" in name else f"{name}:latest", 1, when) for name in names]


def learner() -> Capacity:
    capacity = Capacity("http://server", "ollama", readable=True)
    capacity.observe(listing(), OURS, at=T0)
    return capacity


def test_an_eviction_while_loading_bounds_it_from_above() -> None:
    capacity = learner()
    assert capacity.plan(4) == (2, 0)  # nothing seen yet: room for a game, while learning
    capacity.observe(listing("m1"), OURS, loaded="m1", at=T0)
    capacity.observe(listing("m1", "m2"), OURS, loaded="m2", at=T0)
    assert (capacity.at_least, capacity.at_most, capacity.holds) == (2, None, None)
    assert capacity.plan(4) == (3, 2)  # one more than it was seen to hold
    resident = capacity.observe(listing("m2", "m3"), OURS, loaded="m3", at=T0)
    assert resident == {"m2", "m3"}
    assert (capacity.at_most, capacity.holds) == (2, 2)
    assert capacity.plan(4) == (2, None)
    assert capacity.loads == 3
    assert capacity.describe(4).startswith(
        "holds 2 models (learned: m1 evicted when a third model (m3) loaded at 2026-01-01T12:00"
    )


def test_a_server_that_cannot_hold_two_models_is_learned_at_the_second_load() -> None:
    capacity = learner()
    capacity.observe(listing("m1"), OURS, loaded="m1", at=T0)
    capacity.observe(listing("m2"), OURS, loaded="m2", at=T0)
    assert capacity.holds == 1 and capacity.plan(4) == (1, None)


def test_expiry_is_not_eviction() -> None:
    capacity = learner()
    soon = T0 + timedelta(seconds=5)
    capacity.observe(listing("m1", "m2", expires=soon), OURS, at=T0)
    later = soon + timedelta(seconds=1)
    capacity.observe(listing("m2", "m3"), OURS, loaded="m3", at=later)  # m1 ran out
    assert capacity.at_most is None and capacity.at_least == 2
    assert capacity.plan(4) == (3, 2)


def test_our_own_unloads_and_other_clients_models_are_no_evidence() -> None:
    capacity = learner()
    capacity.observe(listing("m1", "m2", "other:7b"), OURS, at=T0)
    capacity.released("m1")
    capacity.observe(listing("m2", "m3"), OURS, loaded="m3", at=T0)  # other:7b evicted
    assert capacity.at_most is None and capacity.at_least == 2
    capacity.observe(listing("m3", "other:7b"), OURS, at=T0)  # another client's load
    assert capacity.at_most is None
    assert "evicted (another client's load)" in capacity.events[-1].text
    assert "other clients' models seen: other:7b" in capacity.describe(4)


def test_models_listed_before_play_count_as_held() -> None:
    capacity = Capacity("http://server", "ollama", readable=True)
    resident = capacity.observe(listing("m1", "m2", "m3", "other:7b"), OURS, at=T0)
    assert resident == {"m1", "m2", "m3"} and capacity.at_least == 3
    assert capacity.plan(5) == (4, 3)
    assert capacity.plan(3) == (3, None)  # all of a three-model tournament fits


def test_holding_more_than_the_bound_means_the_server_changed() -> None:
    capacity = learner()
    capacity.observe(listing("m1", "m2"), OURS, at=T0)
    capacity.observe(listing("m2", "m3"), OURS, loaded="m3", at=T0)
    assert capacity.holds == 2
    capacity.observe(listing("m2", "m3", "m4"), OURS, loaded="m4", at=T0)  # restarted bigger
    assert (capacity.at_least, capacity.at_most, capacity.holds) == (3, None, None)
    assert "learned again" in capacity.describe(5)


def test_an_override_is_kept_and_what_the_server_showed_is_said() -> None:
    capacity = learner()
    capacity.override, capacity.override_by = 3, "--max-loaded"
    capacity.observe(listing("m1", "m2"), OURS, at=T0)
    capacity.observe(listing("m2", "m3"), OURS, loaded="m3", at=T0)
    assert capacity.plan(4) == (3, None)
    assert capacity.describe(4) == (
        "kept at most 3 models loaded (--max-loaded); it was seen to hold only 2"
    )


def test_a_server_that_cannot_say_is_scheduled_as_assumed_and_says_so() -> None:
    capacity = Capacity("http://server/v1", "openai", readable=False, assumed=4)
    assert capacity.plan(4) == (4, None)
    assert "cannot be read (openai): scheduled without residency knowledge" in (
        capacity.describe(4)
    )


def test_what_was_learned_survives_in_the_folder(tmp_path: Path) -> None:
    capacity = learner()
    capacity.observe(listing("m1", "m2", "\x1b[31mevil"), OURS, loaded="m2", at=T0)
    capacity.observe(listing("m2", "m3"), OURS, loaded="m3", at=T0)
    write_learned(tmp_path, [capacity])
    [back] = read_learned(tmp_path).values()
    assert (back.server, back.holds, back.loads) == ("http://server", 2, 2)
    assert back.learned == capacity.learned and back.events == capacity.events
    assert back.listed is None  # a new run looks at the server again
    assert all("\x1b" not in name for name in back.others)  # server text, made printable
    (tmp_path / LEARNED).write_text("{not json")
    assert read_learned(tmp_path) == {}  # a cache of observations: learned again
    (tmp_path / LEARNED).write_text(json.dumps({"servers": [{"server": "s", "at_most": "x"}]}))
    assert read_learned(tmp_path)["s"].at_most is None
