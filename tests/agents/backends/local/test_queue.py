"""The order one model serves queued requests in."""

from __future__ import annotations

import threading

import pytest

from agents.backends.local.queue import MAX_PASSES, JobQueue, conversation_of


def filled(*sessions: str | None) -> JobQueue[str]:
    queue: JobQueue[str] = JobQueue()
    for i, session in enumerate(sessions):
        queue.put(f"job{i}:{session}", session)
    return queue


def drain(queue: JobQueue[str], resident: str | None = None) -> list[str]:
    out = []
    while len(queue):
        item = queue.take(resident)
        assert item is not None
        out.append(item)
    return out


def test_conversation_of_a_session() -> None:
    assert conversation_of("c1/Ada") == "c1"
    assert conversation_of("c1/team/Ada") == "c1"
    assert conversation_of(None) is None


def test_the_oldest_conversation_goes_first() -> None:
    queue = filled("old/a")
    queue.put("young", "young/a")
    assert queue.take(None) == "job0:old/a"
    queue.put("old again", "old/b")  # the old conversation's next turn, queued later
    assert drain(queue) == ["old again", "young"]


def test_the_loaded_side_goes_before_older_ones() -> None:
    queue = filled("c1/a", "c2/a", "c3/a")
    assert queue.take("c3/a") == "job2:c3/a"
    assert drain(queue) == ["job0:c1/a", "job1:c2/a"]


def test_requests_without_a_session_keep_their_arrival_order() -> None:
    assert drain(filled(None, None, None)) == ["job0:None", "job1:None", "job2:None"]


def test_a_request_passed_over_too_often_goes_next() -> None:
    queue: JobQueue[str] = JobQueue()
    queue.put("old", "old/a")
    queue.take(None)  # "old" is the oldest conversation from now on
    queue.put("young", "young/a")
    served = []
    for turn in range(MAX_PASSES + 1):
        queue.put(f"old{turn}", "old/a")
        served.append(queue.take(None))
    # The old conversation went first MAX_PASSES times; then the young one had waited enough.
    assert served[:MAX_PASSES] == [f"old{t}" for t in range(MAX_PASSES)]
    assert served[MAX_PASSES] == "young"


def test_take_waits_for_a_request_and_close_wakes_it() -> None:
    queue: JobQueue[str] = JobQueue()
    got: list[str | None] = []
    taken = threading.Event()

    def worker() -> None:
        while (item := queue.take(None)) is not None:
            got.append(item)
            taken.set()
        got.append(None)

    thread = threading.Thread(target=worker)
    thread.start()
    queue.put("first", "c/a")
    assert taken.wait(10)
    assert queue.close() == []
    thread.join(10)
    assert not thread.is_alive()
    assert got == ["first", None]


def test_close_refuses_new_requests_and_keeps_queued_ones() -> None:
    queue = filled("c1/a", "c2/a")
    assert queue.close() == ["job0:c1/a", "job1:c2/a"]
    assert drain(queue) == ["job0:c1/a", "job1:c2/a"]  # still served, to be told they stopped
    assert queue.take(None) is None
    with pytest.raises(RuntimeError):
        queue.put("late", "c3/a")
