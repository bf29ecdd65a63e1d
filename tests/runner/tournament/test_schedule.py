"""The model-block scheduler: never more models than a server holds, few loads."""

from __future__ import annotations

import itertools
import random

import pytest

from runner.tournament.schedule import (
    Scheduler,
    Work,
    load_lower_bound,
    pairing_block_loads,
    turn_lower_bound,
)


def round_robin(models: list[str], games: int = 2) -> list[Work[tuple[str, str]]]:
    return [
        Work((a, b), frozenset({a, b}))
        for a, b in itertools.combinations(models, 2)
        for _ in range(games)
    ]


def drive(
    scheduler: Scheduler[object], slots: int, seed: int, judge: str | None = None
) -> list[object]:
    """Start work while slots are free, finish a random running one, until all is done;
    checks on every step that running work only ever uses resident models."""
    rng = random.Random(seed)
    running: list[tuple[str, Work[object]]] = []
    order: list[object] = []
    while len(scheduler) or running:
        for host in scheduler.hosts:
            while sum(1 for h, _ in running if h == host) < slots:
                work = scheduler.next(host)
                if work is None:
                    break
                running.append((host, work))
                order.append(work.item)
            here = scheduler.hosts[host]
            assert len(here.resident) <= here.capacity
            assert {m for h, w in running if h == host for m in w.models} <= here.resident
        assert running, "stalled with work left"
        host, work = running.pop(rng.randrange(len(running)))
        scheduler.finished(host, work)
        if judge is not None and not work.judging:
            scheduler.add(Work(("judged", work.item), frozenset({judge}), judging=True))
    return order


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("models", "capacity"), [(3, 3), (4, 3), (5, 3), (4, 2), (6, 4)])
def test_never_more_models_than_the_server_holds(models: int, capacity: int, seed: int) -> None:
    names = [f"m{i}" for i in range(models)]
    scheduler: Scheduler[object] = Scheduler(["server"], capacity)
    for work in round_robin(names):
        scheduler.add(work)  # type: ignore[arg-type]
    order = drive(scheduler, slots=3, seed=seed)
    assert len(order) == len(round_robin(names))


@pytest.mark.parametrize(
    ("models", "capacity", "bound"), [(3, 3, 3), (4, 3, 5), (5, 3, 7), (4, 4, 4)]
)
def test_a_small_round_robin_needs_exactly_the_lower_bound(
    models: int, capacity: int, bound: int
) -> None:
    names = [f"m{i}" for i in range(models)]
    works = round_robin(names)
    assert load_lower_bound([w.models for w in works], capacity) == bound
    scheduler: Scheduler[object] = Scheduler(["server"], capacity)
    for work in works:
        scheduler.add(work)  # type: ignore[arg-type]
    drive(scheduler, slots=1, seed=0)
    assert scheduler.loads == bound


def test_judgings_run_as_one_block_after_the_games() -> None:
    scheduler: Scheduler[object] = Scheduler(["server"], 3)
    for work in round_robin(["a", "b", "c", "d"], games=1):
        scheduler.add(work)  # type: ignore[arg-type]
    order = drive(scheduler, slots=2, seed=1, judge="judge")
    first_judging = next(i for i, item in enumerate(order) if item[0] == "judged")  # type: ignore[index]
    assert all(item[0] != "judged" for item in order[:first_judging])  # type: ignore[index]
    assert scheduler.hosts["server"].loads.count("judge") == 1  # loaded once, at the end


def test_evicted_models_are_handed_to_the_caller_to_release() -> None:
    scheduler: Scheduler[object] = Scheduler(["server"], 2)
    for work in round_robin(["a", "b", "c"], games=1):
        scheduler.add(work)  # type: ignore[arg-type]
    drive(scheduler, slots=1, seed=0)
    evicted = [model for _, model in scheduler.take_evictions()]
    assert len(evicted) == scheduler.loads - 2  # every load beyond the first two evicted one
    assert scheduler.take_evictions() == []
    assert scheduler.unneeded("server") == sorted(scheduler.hosts["server"].resident)


def test_work_goes_to_the_host_that_holds_its_models() -> None:
    scheduler: Scheduler[object] = Scheduler(["one", "two"], 2)
    scheduler.hosts["one"].resident |= {"a", "b"}
    scheduler.hosts["two"].resident |= {"c", "d"}
    scheduler.add(Work("ab", frozenset({"a", "b"})))
    scheduler.add(Work("cd", frozenset({"c", "d"})))
    second = scheduler.next("two")
    assert second is not None and second.item == "cd"  # not "ab", queued first
    first = scheduler.next("one")
    assert first is not None and first.item == "ab"
    assert scheduler.loads == 0


def test_the_lower_bound() -> None:
    pairs = [frozenset(p) for p in itertools.combinations("abcdef", 2)]
    assert load_lower_bound(pairs, 6) == 6  # everything fits: each model once
    assert load_lower_bound(pairs, 3) == 3 + -(-(15 - 3) // 2)  # 3 + ceil(12 / 2) = 9
    assert load_lower_bound([frozenset({"a"})] * 4, 1) == 1  # same model on both seats


def test_loads_are_the_callers_to_make_one_at_a_time_before_the_work_runs() -> None:
    scheduler: Scheduler[object] = Scheduler(["s"], 2, preload=["s"])
    scheduler.add(Work("ab", frozenset({"a", "b"})))
    assert scheduler.next("s") is None  # chosen to load, not loaded yet
    assert scheduler.start_load("s") == "a"
    assert scheduler.start_load("s") is None  # one at a time
    scheduler.loaded("s", "a", {"a"})
    assert scheduler.next("s") is None
    assert scheduler.start_load("s") == "b"
    scheduler.loaded("s", "b", {"a", "b"})
    work = scheduler.next("s")
    assert work is not None and work.item == "ab"


def test_a_model_the_server_no_longer_lists_is_loaded_again() -> None:
    scheduler: Scheduler[object] = Scheduler(["s"], 2, preload=["s"])
    scheduler.hosts["s"].resident |= {"a", "b"}
    scheduler.add(Work("ab", frozenset({"a", "b"})))
    scheduler.observe("s", {"b"})  # evicted behind our back, or expired
    assert scheduler.next("s") is None
    assert scheduler.start_load("s") == "a"


def test_while_learning_room_is_made_only_while_nothing_runs() -> None:
    scheduler: Scheduler[object] = Scheduler(["s"], 1, preload=["s"])
    scheduler.set_capacity("s", 3, held=2)  # seen to hold 2; trying 3
    scheduler.hosts["s"].resident |= {"a", "b"}
    for item in ("ab1", "ab2"):
        scheduler.add(Work(item, frozenset({"a", "b"})))
    scheduler.add(Work("ac", frozenset({"a", "c"})))
    first, second = scheduler.next("s"), scheduler.next("s")
    assert first is not None and second is not None
    assert scheduler.next("s") is None and scheduler.start_load("s") is None
    scheduler.finished("s", first)
    assert scheduler.next("s") is None and scheduler.start_load("s") is None  # one still runs
    scheduler.finished("s", second)
    assert scheduler.next("s") is None
    assert scheduler.start_load("s") == "c"  # nothing evicted: the third may fit
    assert scheduler.take_evictions() == []
    assert scheduler.expendable("s") == ["b"]  # were it to evict, b: ac does not need it


def test_a_server_holding_one_model_plays_a_pairing_at_a_time_all_at_once() -> None:
    scheduler: Scheduler[object] = Scheduler(["s"], 1)
    for work in round_robin(["a", "b", "c"], games=3):
        scheduler.add(work)  # type: ignore[arg-type]
    blocks: list[frozenset[str]] = []
    while len(scheduler):
        started = []
        while (work := scheduler.next("s")) is not None:
            started.append(work)
        assert started and len({w.models for w in started}) == 1  # one pairing, all of it
        blocks.append(started[0].models)
        for work in started:
            scheduler.finished("s", work)
    assert len(blocks) == len(set(blocks)) == 3  # each pairing once
    assert all(len(a & b) == 1 for a, b in itertools.pairwise(blocks))  # sharing a model


def test_the_lower_bound_on_a_server_holding_one_model() -> None:
    ab, ac, bc = (frozenset(p) for p in ("ab", "ac", "bc"))
    assert turn_lower_bound([(ab, 6), (ab, 4)]) == 6  # one pairing: a load per turn
    # Three pairings of 6 turns: 15 alternations, at most 2 per load after the first.
    assert turn_lower_bound([(ab, 6), (ac, 6), (bc, 6)]) == 1 + 8
    assert turn_lower_bound([(frozenset("a"), 9)]) == 1  # one model on both seats


def test_the_loads_of_a_pairing_at_a_time_on_a_server_holding_one_model() -> None:
    ab, bc = frozenset("ab"), frozenset("bc")
    # Its longest game's turns, and one more: the swapped seat order opens on the other model.
    assert pairing_block_loads([(ab, 6), (ab, 4), (bc, 3)]) == 7 + 4
    assert pairing_block_loads([(frozenset("a"), 9)]) == 0  # no pairing swaps models


def test_on_a_server_holding_one_model_games_start_in_step() -> None:
    scheduler: Scheduler[object] = Scheduler(["s"], 1)
    ab = frozenset({"a", "b"})
    for item, first in (("a opens", "b"), ("a opens again", "b"), ("b opens", "a")):
        scheduler.add(Work(item, ab, first=first))
    started = [scheduler.next("s"), scheduler.next("s"), scheduler.next("s")]
    assert [w.item if w else None for w in started] == ["a opens", "a opens again", None]
    assert scheduler.turn("s", "b") is False  # the running games are on b
    assert scheduler.next("s") is None
    assert scheduler.turn("s", "a") is True  # they turn to a: "b opens" asks a first
    later = scheduler.next("s")
    assert later is not None and later.item == "b opens"
