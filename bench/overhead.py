"""Orchestrator overhead, throughput and scale, printed as figures (no assertions).

1. Overhead per turn: conversations against an instant in-process backend, through the
   whole orchestrator (agent views, rules, transcript writes), compared with calling the
   same backend directly for the same number of replies in the same process.
   Aim: under 1 ms per turn.
2. Throughput: conversations against the fake ollama server (a separate process) with S
   parallel slots and a per-token delay, through the real ollama backend, as a share of
   the ideal: S streams producing a token every delay. Aim: at least 90% of ideal.
3. Scale: 100, 1,000 and 10,000 planned conversations against the instant backend,
   results streamed and dropped as a long run's caller does: peak Python memory
   (tracemalloc) and the most files open at once, each as a ratio to the 100 run.
   Aim: flat (about 1x) however many are planned.

Run: .venv/bin/python bench/overhead.py [--turns N] [--slots S] [--token-delay SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.backends.base import BackendSettings, ChatRequest, Delta, Final  # noqa: E402
from agents.backends.config import GenerateConfig  # noqa: E402
from agents.backends.ollama import OllamaBackend  # noqa: E402
from agents.backends.scripted import ScriptedBackend  # noqa: E402
from runner.logs import configure  # noqa: E402
from runner.model.generate import RetryPolicy  # noqa: E402
from runner.model.pool import BackendPool  # noqa: E402
from runner.play.events import ConversationStarted, Observer  # noqa: E402
from runner.run.orchestrator import iter_conversations, prepare, run_scenarios  # noqa: E402
from runner.scenario.schema import scenario_from_data  # noqa: E402
from runner.settings import RunSettings  # noqa: E402
from runner.transcript import iter_transcripts  # noqa: E402


class Instant(ScriptedBackend):
    """Answers at once with a fixed two-chunk reply."""

    async def chat(self, request: ChatRequest):  # type: ignore[override]
        yield Delta("A short")
        yield Delta(" reply.")
        yield Final(prompt_tokens=10, completion_tokens=3, done_reason="stop")


def scenario(models: list[str], turns: int, repeat: int) -> Any:
    return scenario_from_data(
        {
            "name": "bench",
            "agents": [
                {"name": "A", "model": models[0], "persona": "You are A."},
                {"name": "B", "model": models[-1], "persona": "You are B."},
            ],
            "max_turns": turns,
            "repeat": repeat,
            "seed": 1,
            "end": [{"phrase": "I lost", "outcome": "speaker_loses"}],
        }
    )


async def overhead(turns: int, conversations: int) -> None:
    backend = Instant(models=["m"])
    request = ChatRequest("m", [{"role": "user", "content": "hi"}], GenerateConfig())
    total = turns * conversations

    t0 = time.perf_counter()
    for _ in range(total):
        async for _event in backend.chat(request):
            pass
    direct = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as out:
        settings = RunSettings(out_dir=Path(out), concurrency=conversations)
        t0 = time.perf_counter()
        await run_scenarios(
            [scenario(["m"], turns, conversations)],
            settings,
            pool=BackendPool.fixed(backend, settings),
        )
        orchestrated = time.perf_counter() - t0
        written = sum(len(t.turns) for t in iter_transcripts([out]))
    per_turn_ms = (orchestrated - direct) / total * 1000
    print(f"overhead: {total} turns in {conversations} conversations, {written} written")
    print(
        f"  direct backend calls:   {direct * 1000:9.1f} ms  ({direct / total * 1e6:.1f} us/reply)"
    )
    print(
        f"  through the orchestrator: {orchestrated * 1000:7.1f} ms  ({orchestrated / direct:.1f}x)"
    )
    print(f"  overhead per turn (incl. transcript write): {per_turn_ms:.3f} ms  (aim < 1 ms)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(url: str, seconds: float = 15) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/api/version")).status_code == 200:
                    return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"fake ollama did not start at {url}")


async def throughput(slots: int, token_delay: float, conversations: int, turns: int) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.ollama_server",
            "--port",
            str(port),
            "--model",
            "m",
            "--token-delay",
            str(token_delay),
            "--parallel",
            str(slots),
            "--concede-after",
            "0",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_for(url)
        with tempfile.TemporaryDirectory() as out:
            settings = RunSettings(
                out_dir=Path(out), concurrency=slots, retry=RetryPolicy(attempts=2, base=0.01)
            )
            backend = OllamaBackend(BackendSettings(hosts=(url,)))
            pool = BackendPool.fixed(backend, settings)
            t0 = time.perf_counter()
            try:
                await run_scenarios([scenario(["m"], turns, conversations)], settings, pool=pool)
            finally:
                await backend.aclose()
            wall = time.perf_counter() - t0
            transcripts = list(iter_transcripts([out]))
        tokens = sum(t.completion_tokens or 0 for tr in transcripts for t in tr.turns)
        replies = sum(len(tr.turns) for tr in transcripts)
        # Ideal: every slot busy all the time, a token every `token_delay` seconds.
        ideal = slots / token_delay
        actual = tokens / wall
        print(
            f"throughput: {conversations} conversations x {turns} turns on {slots} slots, "
            f"{token_delay * 1000:g} ms/token"
        )
        print(f"  {replies} replies, {tokens} tokens in {wall:.2f} s")
        print(
            f"  {actual:.1f} tokens/s vs ideal {ideal:.1f} tokens/s: {actual / ideal:.1%} of ideal"
            " (aim >= 90%)"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


class OpenFiles(Observer):
    """Samples the process's open file descriptors whenever a conversation starts."""

    def __init__(self) -> None:
        self.most = 0

    def conversation_started(self, event: ConversationStarted) -> None:
        self.most = max(self.most, len(os.listdir("/proc/self/fd")))


async def scale_one(planned: int) -> tuple[float, int, float]:
    import tracemalloc

    backend = Instant(models=["m"], concurrency=4)
    with tempfile.TemporaryDirectory() as out:
        settings = RunSettings(out_dir=Path(out))
        pool = BackendPool.fixed(backend, settings)
        files = OpenFiles()
        tracemalloc.start()
        t0 = time.perf_counter()
        ready = await prepare([scenario(["m"], 4, planned)], pool)
        done = 0
        async for _ in iter_conversations(
            ready.run, settings, max_conversations=ready.max_conversations, observer=files
        ):
            done += 1
        wall = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert done == planned
    return peak / 1e6, files.most, wall


async def scale() -> None:
    print("scale: conversations planned vs peak memory and open files (results streamed)")
    base: tuple[float, int, float] | None = None
    for planned in (100, 1_000, 10_000):
        peak, most, wall = await scale_one(planned)
        base = base or (peak, most, wall)
        print(
            f"  {planned:>6} planned: peak {peak:6.2f} MB ({peak / base[0]:.2f}x), "
            f"at most {most} files open ({most / base[1]:.2f}x), "
            f"{wall / planned * 1000:.2f} ms per conversation"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100, help="turns per conversation (overhead)")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--token-delay", type=float, default=0.01)
    args = parser.parse_args()
    configure(fmt="console")  # warnings only: the figures are the output
    os.environ.pop("OLLAMA_HOST", None)

    asyncio.run(overhead(args.turns, args.conversations))
    asyncio.run(throughput(args.slots, args.token_delay, conversations=args.slots * 4, turns=10))
    asyncio.run(scale())


if __name__ == "__main__":
    main()
