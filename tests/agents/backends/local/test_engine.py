"""The engine worker's settings and bookkeeping that need no model."""

from __future__ import annotations

import asyncio

import pytest

from agents.backends.local import engine as llama_engine
from agents.backends.local.engine import THREADS_ENV, Job, default_threads, threads_from_env
from agents.errors import ConfigError


def test_threads_from_the_environment() -> None:
    assert threads_from_env({THREADS_ENV: "3"}) == 3
    assert threads_from_env({THREADS_ENV: " 1 "}) == 1
    assert threads_from_env({}) == default_threads() >= 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_threads_name_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{THREADS_ENV}={value!r}: expected a whole"):
        threads_from_env({THREADS_ENV: value})


def test_configure_sets_the_budget_and_the_threads_of_later_loads() -> None:
    budget, threads = llama_engine.budget(), llama_engine.threads()
    try:
        llama_engine.configure(state_budget=123, threads=5)
        assert llama_engine.budget() == 123 and llama_engine.threads() == 5
    finally:
        llama_engine.configure(state_budget=budget, threads=threads)


@pytest.mark.parametrize(
    ("source", "reused", "outcome"),
    [
        (None, 0, None),  # no session: nothing to report
        ("new", 0, "new"),
        ("loaded", 40, "hit"),
        ("restored", 40, "hit"),
        ("loaded", 0, "miss"),  # kept, but the prompt did not extend it
        ("evicted", 0, "miss"),
    ],
)
async def test_how_a_turn_found_its_context(
    source: llama_engine.Source | None, reused: int, outcome: str | None
) -> None:
    job = Job([], {}, asyncio.get_running_loop(), asyncio.Queue(), "m", session="c/a")
    job.source, job.reused = source, reused
    assert job.outcome == outcome
