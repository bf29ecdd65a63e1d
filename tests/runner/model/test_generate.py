"""generate(): first-token and whole-reply timeouts, retries with backoff, timing."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from agents.backends.base import ChatEvent, ChatRequest, Delta, Final, ModelInfo, Timeouts
from agents.backends.scripted import ScriptedBackend
from agents.errors import BackendTimeout, ModelNotFound, StreamError
from runner.model.generate import DROPS_HINT, SAME_DROPS, RetryPolicy, generate

REQUEST = ChatRequest("m", [{"role": "user", "content": "hi"}])


class Trickle(ScriptedBackend):
    """Sends a token every ``gap`` seconds, ``count`` times, stalling first if asked."""

    def __init__(self, gap: float, count: int, stall_first: float = 0.0, final: bool = True):
        super().__init__(models=["m"])
        self.gap, self.count, self.stall_first, self.final = gap, count, stall_first, final
        self.calls = 0

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        self.calls += 1
        if self.calls == 1 and self.stall_first:
            await asyncio.sleep(self.stall_first)
        for _ in range(self.count):
            await asyncio.sleep(self.gap)
            yield Delta("x")
        if self.final:
            yield Final(completion_tokens=self.count, done_reason="stop")

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("m")]


async def test_timing_and_text() -> None:
    seen: list[str] = []
    result = await generate(
        Trickle(0.01, 3), REQUEST, timeouts=Timeouts(), retry=RetryPolicy(), on_delta=seen.append
    )
    assert result.text == "xxx" and seen == ["x", "x", "x"]
    assert result.attempts == 1 and result.final.completion_tokens == 3
    assert result.ttft_ms is not None and 5 <= result.ttft_ms <= result.latency_ms


async def test_first_token_timeout_then_retry_succeeds() -> None:
    backend = Trickle(0.0, 2, stall_first=5)
    retried: list[int] = []
    result = await generate(
        backend,
        REQUEST,
        timeouts=Timeouts(first_token=0.1, reply=5),
        retry=RetryPolicy(attempts=2, base=0.001),
        on_retry=lambda e, n, w: retried.append(n),
    )
    assert result.attempts == 2 and retried == [1]
    assert result.failures[0].kind == "timeout"


async def test_whole_reply_timeout() -> None:
    with pytest.raises(BackendTimeout, match=r"no whole reply within 0\.2s") as info:
        await generate(
            Trickle(0.05, 100),
            REQUEST,
            timeouts=Timeouts(first_token=1, reply=0.2),
            retry=RetryPolicy(attempts=2, base=0.001),
        )
    assert info.value.attempts == 2


async def test_stream_without_final_is_a_retryable_stream_error() -> None:
    with pytest.raises(StreamError) as info:
        await generate(
            Trickle(0, 1, final=False),
            REQUEST,
            timeouts=Timeouts(),
            retry=RetryPolicy(attempts=3, base=0.001),
        )
    assert info.value.attempts == 3


async def test_final_errors_are_not_retried() -> None:
    backend = ScriptedBackend({"m": [ModelNotFound("gone")]}, models=["m"])
    with pytest.raises(ModelNotFound) as info:
        await generate(backend, REQUEST, timeouts=Timeouts(), retry=RetryPolicy(base=0.001))
    assert info.value.attempts == 1 and len(backend.requests) == 1


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base=1, cap=10)
    rng = random.Random(0)
    for retry in range(8):
        ceiling = min(10, 2**retry)
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # the whole range is used


class Drops(ScriptedBackend):
    """Every attempt fails with the next of ``messages`` (a StreamError), then succeeds."""

    def __init__(self, *messages: str) -> None:
        errors = [StreamError(m, backend="scripted") for m in messages]
        super().__init__({"m": [*errors, "at last"]}, models=["m"])


async def test_identical_drops_stop_early_with_a_hint() -> None:
    backend = Drops(*["the server closed the connection mid-reply"] * 5)
    with pytest.raises(StreamError) as info:
        await generate(backend, REQUEST, timeouts=Timeouts(), retry=RetryPolicy(base=0.001))
    assert info.value.attempts == SAME_DROPS == len(backend.requests) == 3
    assert info.value.hint == DROPS_HINT and "context" in str(info.value)
    assert "--concurrency 1" in str(info.value)


async def test_different_drops_use_every_attempt() -> None:
    backend = Drops("cut at 3", "cut at 9", "cut at 3", "cut at 5")
    result = await generate(
        backend, REQUEST, timeouts=Timeouts(), retry=RetryPolicy(attempts=5, base=0.001)
    )
    assert result.text == "at last" and result.attempts == 5


async def test_identical_timeouts_are_not_drops() -> None:
    backend = ScriptedBackend(
        {"m": [BackendTimeout("no first token within 1s")] * 4 + ["fine"]}, models=["m"]
    )
    result = await generate(
        backend, REQUEST, timeouts=Timeouts(), retry=RetryPolicy(attempts=5, base=0.001)
    )
    assert result.attempts == 5
