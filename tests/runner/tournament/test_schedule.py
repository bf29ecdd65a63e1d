"""The model-block scheduler: never more models than a server holds, few loads."""

from __future__ import annotations

import itertools
import random

import pytest

from runner.tournament.schedule import (
    Scheduler,
    Work,
    load_lower_bound,
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


def test_a_server_holding_one_model_gets_every_game_at_once_and_judgings_after() -> None:
    scheduler: Scheduler[object] = Scheduler(["s"], 1)
    for work in round_robin(["a", "b", "c"], games=3):
        scheduler.add(work)  # type: ignore[arg-type]
    started = []
    while (work := scheduler.next("s")) is not None:
        started.append(work)
    assert len(started) == 9  # every pairing's games: the caller orders their turns
    assert scheduler.hosts["s"].swapping and scheduler.hosts["s"].resident == {"a", "b", "c"}
    scheduler.add(Work("judged", frozenset({"j"}), judging=True))
    for work in started[:-1]:
        scheduler.finished("s", work)
    assert scheduler.next("s") is None  # the judge waits for the last game
    scheduler.finished("s", started[-1])
    judging = scheduler.next("s")
    assert judging is not None and judging.item == "judged"
    assert not scheduler.hosts["s"].swapping and scheduler.hosts["s"].resident == {"j"}


def test_the_lower_bound_on_a_server_holding_one_model() -> None:
    ab, ac, bc = (frozenset(p) for p in ("ab", "ac", "bc"))
    # One pairing: a load per turn, and one more when each seat order opens a longest game.
    assert turn_lower_bound([(ab, "a", 6), (ab, "b", 4)]) == 6
    assert turn_lower_bound([(ab, "a", 6), (ab, "b", 6)]) == 7
    assert turn_lower_bound([(ab, None, 6), (ab, None, 6)]) == 6  # who opened not known
    # Three pairings, both seat orders of 6 turns: 7 runs each, at most 2 per load.
    games = [(p, first, 6) for p in (ab, ac, bc) for first in sorted(p)]
    assert turn_lower_bound(games) == 11
    # Four models: 42 runs at most 3 per load make 14, but a pairing loaded s and t times
    # has at most 2 min(s, t) + 1 runs: every model 3 times, and all but one a fourth.
    four = [(frozenset(p), p[i], 6) for p in itertools.combinations("abcd", 2) for i in (0, 1)]
    assert turn_lower_bound(four) == 4 * 3 + 3
    assert turn_lower_bound([(frozenset("a"), "a", 9)]) == 1  # one model on both seats


def test_the_lower_bound_on_a_server_holding_one_model_is_met_by_rounds_of_the_models() -> None:
    """Round after round of the models, each load serving a turn of every game waiting for
    its model: the loads such an order makes, against the bound, for a round robin."""
    for count, turns in ((3, 6), (4, 8), (5, 8), (5, 5)):
        models = [chr(ord("a") + i) for i in range(count)]
        games = [
            [first, second] * turns
            for x, y in itertools.combinations(models, 2)
            for first, second in ((x, y), (y, x))
        ]
        games = [g[:turns] for g in games]
        loads, at = 0, [0] * len(games)
        while any(i < len(g) for i, g in zip(at, games, strict=True)):
            model = models[loads % count]
            loads += 1
            at = [i + (i < len(g) and g[i] == model) for i, g in zip(at, games, strict=True)]
        bound = turn_lower_bound([(frozenset(g), g[0], len(g)) for g in games])
        assert loads == bound, (count, turns, loads, bound)
