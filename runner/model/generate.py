"""One reply from one backend, with the policy every backend shares.

Timeouts (first token, whole reply), retries with exponential backoff and full jitter,
the concurrency limit, the rule that a reply is complete only with its final message,
and client-side timing live here once, so backends stay thin.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import structlog

from agents.backends.base import Backend, ChatRequest, Delta, Final, Timeouts, clean_text
from agents.errors import BackendError, BackendTimeout, StreamError

log = structlog.get_logger("sparring.generate")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # total tries per turn, the first included
    base: float = 1.0  # seconds before the first retry
    cap: float = 60.0  # longest single wait

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry)].

        Jitter is drawn from its own unseeded generator: nothing seeded (speaking order,
        sampling seeds) may depend on how often or how long a run waited.
        """
        return (rng or _JITTER).uniform(0, min(self.cap, self.base * (2**retry)))


_JITTER = random.Random()

# A stream dropped this many times in a row the same way is no passing fault: stop early.
SAME_DROPS = 3
DROPS_HINT = (
    f"dropped the same way {SAME_DROPS} times in a row; the server's log may say why (often "
    "a prompt longer than its context; llama-cpp-python's server also cuts a stream short "
    "when a newer request arrives: use --concurrency 1)"
)


def _dropped_alike(failures: list[BackendError]) -> bool:
    last = failures[-SAME_DROPS:]
    return len(last) == SAME_DROPS and all(
        isinstance(e, StreamError) and e.message == last[0].message for e in last
    )


@dataclass(slots=True)
class Generation:
    text: str
    final: Final
    started_at: float  # wall clock, epoch seconds, of the successful attempt
    ended_at: float
    ttft_ms: float | None
    latency_ms: float
    attempts: int
    failures: list[BackendError] = field(default_factory=list)  # of the attempts before


DeltaCallback = Callable[[str], None]


async def _attempt(
    backend: Backend,
    request: ChatRequest,
    timeouts: Timeouts,
    on_delta: DeltaCallback | None,
) -> tuple[str, Final, float | None, float, float]:
    pieces: list[str] = []
    final: Final | None = None
    ttft: float | None = None
    started_wall = time.time()
    t0 = time.perf_counter()
    loop = asyncio.get_running_loop()
    stream = backend.chat(request)
    phase = "first token"
    try:
        # One deadline, moved once the first token arrives: a queued or loading model gets
        # `first_token` seconds, and the whole reply gets `reply` seconds from the start.
        async with asyncio.timeout(timeouts.first_token) as deadline:
            async for event in stream:
                if isinstance(event, Delta):
                    event = Delta(clean_text(event.text))
                    if ttft is None:
                        ttft = (time.perf_counter() - t0) * 1000
                        phase = "whole reply"
                        deadline.reschedule(loop.time() + max(0.0, timeouts.reply - ttft / 1000))
                    if event.text:
                        pieces.append(event.text)
                        if on_delta is not None:
                            on_delta(event.text)
                else:
                    final = event
    except TimeoutError:
        limit = timeouts.first_token if phase == "first token" else timeouts.reply
        raise BackendTimeout(
            f"no {phase} within {limit:g}s",
            backend=backend.name,
            host=backend.host,
            model=request.model,
        ) from None
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    if final is None:
        raise StreamError(
            "stream ended without its final message",
            backend=backend.name,
            host=backend.host,
            model=request.model,
        )
    latency = (time.perf_counter() - t0) * 1000
    return "".join(pieces), final, ttft, latency, started_wall


async def generate(
    backend: Backend,
    request: ChatRequest,
    *,
    timeouts: Timeouts,
    retry: RetryPolicy,
    limit: AbstractAsyncContextManager[object] | None = None,
    on_delta: DeltaCallback | None = None,
    on_retry: Callable[[BackendError, int, float], None] | None = None,
) -> Generation:
    """Produce one reply, retrying retryable failures from scratch.

    ``limit`` (the server's concurrency semaphore) is held for each attempt and released
    while waiting to retry, so a backing-off conversation leaves its slot to others.
    ``on_delta`` sees the text of the attempt in progress; ``on_retry(error, attempt, wait)``
    is told before each retry so a live display can discard a half-streamed attempt.
    Raises the last :class:`BackendError` when a final error occurs or attempts run out.
    """
    failures: list[BackendError] = []
    attempt = 0
    while True:
        attempt += 1
        try:
            async with limit or contextlib.nullcontext():
                text, final, ttft, latency, started = await _attempt(
                    backend, request, timeouts, on_delta
                )
        except BackendError as exc:
            failures.append(exc)
            alike = _dropped_alike(failures)
            if not exc.retryable or attempt >= retry.attempts or alike:
                exc.attempts = attempt
                if alike and exc.hint is None:
                    exc.hint = DROPS_HINT
                raise
            wait = retry.delay(attempt - 1)
            log.warning(
                "retrying",
                model=request.model,
                attempt=attempt,
                wait_s=round(wait, 2),
                error=str(exc),
            )
            if on_retry is not None:
                on_retry(exc, attempt, wait)
            await asyncio.sleep(wait)
            continue
        return Generation(
            text=text,
            final=final,
            started_at=started,
            ended_at=time.time(),
            ttft_ms=ttft,
            latency_ms=latency,
            attempts=attempt,
            failures=failures,
        )
