"""Saved contexts: the memory budget, least-recently-used eviction, the environment knob."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.backends.local import states as llama_states
from agents.backends.local.states import (
    MIB,
    STATE_MB_ENV,
    SavedState,
    StateStore,
    budget_from_env,
    default_budget,
)
from agents.errors import ConfigError


def state(size: int) -> SavedState:
    return SavedState(tokens=(1, 2, 3), starts=(0,), data=bytearray(size))


def test_within_budget_states_come_back_once() -> None:
    store = StateStore(budget=100)
    store.put("model", "c1/a", state(40))
    store.put("model", "c1/b", state(40))
    assert store.held == 80
    assert store.take("model", "c1/a") is not None
    assert store.take("model", "c1/a") is None  # taken: it is loaded now
    assert not store.was_dropped("model", "c1/a")
    assert store.held == 40


def test_least_recently_saved_goes_first() -> None:
    store = StateStore(budget=100)
    for name in ("a", "b", "c"):
        store.put("model", name, state(40))
    assert store.sessions("model") == ["b", "c"]
    assert store.was_dropped("model", "a") and store.evictions == 1
    assert store.held == 80
    # Saving "a" again makes room by evicting "b", now the oldest.
    store.put("model", "a", state(40))
    assert store.sessions("model") == ["c", "a"]
    assert not store.was_dropped("model", "a") and store.was_dropped("model", "b")


def test_a_state_larger_than_the_budget_is_not_kept() -> None:
    store = StateStore(budget=10)
    store.put("model", "big", state(11))
    assert store.take("model", "big") is None
    assert store.was_dropped("model", "big")
    assert store.held == 0


def test_lowering_the_budget_evicts_at_once() -> None:
    store = StateStore(budget=100)
    store.put("model", "a", state(40))
    store.put("model", "b", state(40))
    store.budget = 50
    assert store.sessions("model") == ["b"] and store.held == 40


def test_models_share_the_budget_and_forget_their_own() -> None:
    store = StateStore(budget=100)
    store.put("small", "a", state(60))
    store.put("large", "a", state(60))  # the same session name on another model
    assert store.sessions("small") == [] and store.sessions("large") == ["a"]
    store.forget_owner("large")
    assert store.held == 0 and store.sessions("large") == []
    assert not store.was_dropped("large", "a")  # an unloaded model's sides start afresh


def test_budget_from_the_environment() -> None:
    assert budget_from_env({STATE_MB_ENV: "64"}) == 64 * MIB
    assert budget_from_env({STATE_MB_ENV: "0"}) == 0
    assert budget_from_env({STATE_MB_ENV: " 1.5 "}) == int(1.5 * MIB)
    assert budget_from_env({}) == default_budget()
    assert 0 < default_budget() <= 2048 * MIB


@pytest.mark.parametrize("value", ["lots", "-1", "nan", "inf"])
def test_a_bad_budget_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        budget_from_env({STATE_MB_ENV: value})
    message = str(info.value)
    assert message.startswith(f"{STATE_MB_ENV}={value!r}:") and "\n" not in message


def test_the_default_budget_respects_a_containers_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = tmp_path / "memory.max"
    monkeypatch.setattr(llama_states, "CGROUP_MEMORY_MAX", limit)
    limit.write_text("max\n")  # no limit: physical memory decides
    unlimited = default_budget()
    limit.write_text(f"{256 * MIB}\n")
    assert default_budget() == min(unlimited, 32 * MIB)
