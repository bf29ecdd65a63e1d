"""The model-block scheduler: never more models than a server holds, few loads."""

from __future__ import annotations

import itertools
import random

import pytest

from runner.tournament.schedule import Scheduler, Work, load_lower_bound


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
