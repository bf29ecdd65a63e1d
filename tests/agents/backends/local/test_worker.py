"""Crash isolation: an embedded model's worker process dies, sparring's process does not.

Real-model tests kill real worker processes (SIGKILL, SIGSEGV from outside, or a real
invalid read inside through the ``SPARRING_LOCAL_FAULT`` hook) and check that the request
it served fails retryably, naming the model and the signal, that the next one starts a new
worker, and that a model whose workers keep dying is stopped with a final error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.backends.base import ChatRequest, Delta, Final
from agents.backends.config import GenerateConfig
from agents.backends.local import engine as llama_engine
from agents.backends.local import worker
from agents.backends.local.backend import LocalBackend
from agents.backends.local.core import Fault
from agents.backends.local.gguf import resolve_model
from agents.backends.local.worker import Death
from agents.errors import EngineCrashed, EngineFailed

MODEL = "smollm2:135m"
ROOT = Path(__file__).resolve().parents[4]


def test_a_fault_is_read_from_its_setting() -> None:
    assert Fault.parse("SIGSEGV:3") == Fault(signal.SIGSEGV, 3)
    assert Fault.parse("sigkill:0:1") == Fault(signal.SIGKILL, 0, 1)
    assert Fault.parse("SIGKILL:0:1").applies(0) and not Fault.parse("SIGKILL:0:1").applies(1)
    for bad in ("SIGNOPE:1", "SIGSEGV", "SIGSEGV:x", "SIGSEGV:1:2:3"):
        with pytest.raises(ValueError, match="SIGNAL:TOKENS"):
            Fault.parse(bad)


def test_a_death_says_how_the_worker_ended() -> None:
    assert Death(-11, "").cause == "died of SIGSEGV (signal 11)"
    assert "out-of-memory" in Death(-9, "").cause
    assert Death(1, "ImportError").cause == "exited with status 1"
    assert Death(None, "").cause == "stopped answering"


def test_in_process_is_a_setting_that_names_itself_when_wrong() -> None:
    assert llama_engine.in_process_from_env({}) is False
    assert llama_engine.in_process_from_env({llama_engine.IN_PROCESS_ENV: "1"}) is True
    with pytest.raises(Exception, match=r"^SPARRING_LOCAL_IN_PROCESS='maybe': expected"):
        llama_engine.in_process_from_env({llama_engine.IN_PROCESS_ENV: "maybe"})


# --- real model -------------------------------------------------------------------------


def _request(text: str, num_ctx: int, **options: Any) -> ChatRequest:
    config = {"temperature": 0, "seed": 1, "num_predict": 24, "num_ctx": num_ctx, **options}
    return ChatRequest(MODEL, [{"role": "user", "content": text}], GenerateConfig(**config))


async def _reply(backend: LocalBackend, request: ChatRequest) -> tuple[str, Final]:
    pieces: list[str] = []
    async for event in backend.chat(request):
        if isinstance(event, Delta):
            pieces.append(event.text)
        else:
            return "".join(pieces), event
    raise AssertionError("no final")


def _stats(num_ctx: int) -> llama_engine.EngineStats:
    path = str(resolve_model(MODEL).path)
    return llama_engine.loaded_engines()[(path, num_ctx, None, False)]


@contextlib.asynccontextmanager
async def _backend() -> AsyncIterator[LocalBackend]:
    backend = LocalBackend()
    try:
        yield backend
    finally:
        await backend.aclose()


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Each test loads an engine of its own (its own num_ctx): a fault set for it reaches no
    # engine another test holds.
    yield
    monkeypatch.delenv(worker.FAULT_ENV, raising=False)


@pytest.mark.realmodel
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
async def test_a_worker_killed_mid_reply_costs_that_request_only(sig: signal.Signals) -> None:
    num_ctx = 768 if sig == signal.SIGKILL else 1024
    async with _backend() as backend:
        request = _request("Write a long story about a dragon.", num_ctx, num_predict=400)
        before, _ = await _reply(backend, _request("Say hi.", num_ctx))
        first = _stats(num_ctx)
        assert first.pid is not None and first.workers == 1

        with pytest.raises(EngineCrashed) as info:
            async for event in backend.chat(request):
                if isinstance(event, Delta):  # mid-reply: kill the worker from outside
                    os.kill(first.pid, sig)
        error = info.value
        assert error.retryable and error.model == MODEL
        assert f"died of {sig.name} (signal {sig.value})" in str(error)
        assert "\n" not in str(error)

        after, final = await _reply(backend, _request("Say hi.", num_ctx))
        assert after == before and final.completion_tokens  # a new worker, the same reply
        second = _stats(num_ctx)
        assert second.deaths == 1 and second.workers == 2 and second.pid != first.pid


@pytest.mark.realmodel
async def test_a_worker_that_dies_on_every_request_stops_its_model(
    monkeypatch: pytest.MonkeyPatch, fault: None
) -> None:
    monkeypatch.setenv(worker.FAULT_ENV, "SIGSEGV:0")  # a real invalid read, every worker
    async with _backend() as backend:
        request = _request("Say hi.", 1280)
        for _ in range(llama_engine.MAX_DEATHS):
            with pytest.raises(EngineCrashed, match=r"died of SIGSEGV"):
                await _reply(backend, request)
        with pytest.raises(EngineFailed) as info:
            await _reply(backend, request)
        assert not info.value.retryable and info.value.model == MODEL
        assert "3 times in a row" in str(info.value) and "\n" not in str(info.value)
        assert _stats(1280).workers == llama_engine.MAX_DEATHS  # not started again


@pytest.mark.realmodel
async def test_a_worker_that_crashes_once_is_replaced_for_the_requests_queued_behind(
    monkeypatch: pytest.MonkeyPatch, fault: None
) -> None:
    monkeypatch.setenv(worker.FAULT_ENV, "SIGABRT:2:1")  # the first worker aborts
    async with _backend() as backend:
        requests = [_request(f"Say hi to {name}.", 1536) for name in ("Ann", "Bo", "Cy")]
        results = await asyncio.gather(
            *(_reply(backend, r) for r in requests), return_exceptions=True
        )
        crashed = [r for r in results if isinstance(r, EngineCrashed)]
        assert len(crashed) == 1 and "SIGABRT" in str(crashed[0])
        assert sum(isinstance(r, tuple) and bool(r[0]) for r in results) == 2
        assert _stats(1536).deaths == 1


@pytest.mark.realmodel
async def test_a_hung_worker_is_killed_once_its_reply_is_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker, "STOP_GRACE", 0.5)
    async with _backend() as backend:
        await _reply(backend, _request("Say hi.", 1792))
        pid = _stats(1792).pid
        assert pid is not None
        stream = backend.chat(_request("Write a long story.", 1792, num_predict=400))
        async for event in stream:
            if isinstance(event, Delta):
                os.kill(pid, signal.SIGSTOP)  # hangs as a deadlocked engine would
                break
        # Closing the stream stops the reply; the worker never answers, so it is killed
        # and the next request gets a new one.
        await stream.aclose()  # type: ignore[attr-defined]
        _, final = await asyncio.wait_for(_reply(backend, _request("Say hi.", 1792)), 60)
        assert final.completion_tokens and _stats(1792).pid != pid


@pytest.mark.realmodel
def test_a_worker_exits_when_sparring_is_killed(tmp_path: Path) -> None:
    code = f"""
import asyncio, sys
from agents.backends.base import ChatRequest
from agents.backends.config import GenerateConfig
from agents.backends.local import engine
from agents.backends.local.backend import LocalBackend

async def main():
    backend = LocalBackend()
    request = ChatRequest({MODEL!r}, [{{"role": "user", "content": "Hi"}}],
                          GenerateConfig(num_predict=1))
    async for _ in backend.chat(request):
        pass
    (stats,) = engine.loaded_engines().values()
    print(stats.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""
    with subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        parent.kill()  # no atexit, no close: only the pipe tells the worker
    assert _gone_within(pid, 30)


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` (not a child of ours) ends within ``seconds``."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], seconds)  # readable once it has exited
        return bool(ready)
    finally:
        os.close(fd)
