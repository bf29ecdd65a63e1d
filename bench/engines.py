"""The embedded engine's overhead, on smollm2:135m. Prints figures; asserts nothing.

    .venv/bin/python bench/engines.py [--tokens 128] [--rounds 5]

(a) tokens/s: llama-cpp-python's create_chat_completion stream called directly, against
    the same request through sparring's LocalBackend and runner.generate.generate();
(b) three conversations at once against the same three one after another (one model has
    one worker thread, so at once must simply not be slower);
(c) time from starting ``sparring run`` to its first streamed token, if the CLI works.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.backends.base import BackendSettings, ChatRequest, Message, Timeouts  # noqa: E402
from agents.backends.gguf import resolve_model  # noqa: E402
from agents.backends.local import (  # noqa: E402
    DEFAULT_NUM_CTX,
    LocalBackend,
    completion_kwargs,
    unload_all,
)
from runner.generate import RetryPolicy, generate  # noqa: E402

MODEL = "smollm2:135m"
MESSAGES: list[Message] = [
    {"role": "system", "content": "You are a storyteller."},
    {"role": "user", "content": "Write a long story about a dragon who learns to cook."},
]


def line(label: str, value: str) -> None:
    print(f"{label:<48} {value}", flush=True)


# --- (a) direct vs through sparring ------------------------------------------------------


def direct_llama(path: Path) -> Any:
    import llama_cpp

    return llama_cpp.Llama(
        model_path=str(path), n_ctx=DEFAULT_NUM_CTX, n_threads=os.cpu_count(), verbose=False
    )


def direct_once(llm: Any, options: dict[str, Any], reset: bool) -> tuple[str, float]:
    if reset:
        llm.reset()
    t0 = time.perf_counter()
    pieces = []
    for chunk in llm.create_chat_completion(
        messages=[dict(m) for m in MESSAGES], stream=True, **completion_kwargs(options)
    ):
        text = chunk["choices"][0]["delta"].get("content")
        if text:
            pieces.append(text)
    return "".join(pieces), time.perf_counter() - t0


async def sparring_once(backend: LocalBackend, options: dict[str, Any]) -> tuple[str, float, int]:
    t0 = time.perf_counter()
    result = await generate(
        backend,
        ChatRequest(MODEL, MESSAGES, options),
        timeouts=Timeouts(),
        retry=RetryPolicy(attempts=1),
    )
    return result.text, time.perf_counter() - t0, result.final.completion_tokens or 0


async def bench_throughput(backend: LocalBackend, tokens: int, rounds: int) -> None:
    options = {"temperature": 0, "seed": 1, "num_predict": tokens}
    path = resolve_model(MODEL).path
    llm = direct_llama(path)
    direct_once(llm, options, reset=True)  # warm-up both
    await sparring_once(backend, options)
    direct_reset: list[float] = []
    direct_cached: list[float] = []
    through: list[float] = []
    same = True
    n_tokens = 0
    for _ in range(rounds):
        text_d, t = direct_once(llm, options, reset=True)
        direct_reset.append(t)
        _, t = direct_once(llm, options, reset=False)
        direct_cached.append(t)
        text_s, t, n_tokens = await sparring_once(backend, options)
        through.append(t)
        same = same and text_d == text_s
    llm.close()
    d, c, s = (statistics.median(x) for x in (direct_reset, direct_cached, through))
    print("(a) throughput, smollm2:135m, greedy, same prompt and options")
    line("    completion tokens per reply", f"{n_tokens} (same text both ways: {same})")
    line("    llama-cpp-python direct, fresh KV cache", f"{n_tokens / d:7.1f} tok/s")
    line("    llama-cpp-python direct, prefix cache kept", f"{n_tokens / c:7.1f} tok/s")
    line("    sparring LocalBackend via generate()", f"{n_tokens / s:7.1f} tok/s")
    line("    ratio sparring / direct (fresh cache)", f"{d / s:7.1%}")
    line("    ratio sparring / direct (prefix cache)", f"{c / s:7.1%}")


# --- (b) concurrent vs sequential conversations ---------------------------------------------

TOPICS = ("cats", "the moon", "bread")


async def conversation(backend: LocalBackend, topic: str, tokens: int) -> None:
    messages: list[Message] = [
        {"role": "system", "content": "You argue, one short paragraph per turn."},
        {"role": "user", "content": f"Convince me that {topic} are overrated."},
    ]
    options = {"temperature": 0.8, "seed": 7, "num_predict": tokens}
    for _ in range(2):
        result = await generate(
            backend,
            ChatRequest(MODEL, list(messages), options),
            timeouts=Timeouts(),
            retry=RetryPolicy(attempts=1),
        )
        messages += [
            {"role": "assistant", "content": result.text},
            {"role": "user", "content": "I disagree. Try again."},
        ]


async def bench_concurrency(backend: LocalBackend, tokens: int, rounds: int) -> None:
    async def one_after_another() -> None:
        for topic in TOPICS:
            await conversation(backend, topic, tokens)

    async def at_once() -> None:
        await asyncio.gather(*(conversation(backend, topic, tokens) for topic in TOPICS))

    times: dict[str, list[float]] = {"seq": [], "con": []}
    modes = [("seq", one_after_another), ("con", at_once)]
    for i in range(rounds):
        # Alternate which goes first: this machine's background load is not constant.
        for mode, run in modes if i % 2 == 0 else modes[::-1]:
            t0 = time.perf_counter()
            await run()
            times[mode].append(time.perf_counter() - t0)
    seq, con = statistics.median(times["seq"]), statistics.median(times["con"])
    print(f"(b) {len(TOPICS)} conversations x 2 replies, num_predict={tokens}, median of {rounds}")
    line("    one after another", f"{seq:7.2f} s")
    line("    at once", f"{con:7.2f} s")
    line("    ratio at once / one after another", f"{con / seq:7.1%}")


# --- (c) CLI start to first token ------------------------------------------------------------

SCENARIO = """\
name: bench-first-token
agents:
  - name: alice
    model: smollm2:135m
    persona: You are cheerful.
  - name: bob
    model: smollm2:135m
    persona: You are grumpy.
max_turns: 1
defaults:
  options:
    temperature: 0
    num_predict: 8
"""


def bench_cli() -> None:
    marker = f"({MODEL}): "
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp, "bench.yaml")
        scenario.write_text(SCENARIO)
        argv = [
            sys.executable,
            "-c",
            "import sys; from runner.cli import main; sys.exit(main())",
            "run",
            str(scenario),
            "--backend",
            "local",
            "--out",
            tmp,
        ]
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(
                argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
            )
        except OSError as exc:
            print(f"(c) skipped: CLI unavailable ({exc})")
            return
        assert proc.stdout is not None and proc.stderr is not None
        seen = b""
        first: float | None = None
        deadline = t0 + 120
        while first is None and time.perf_counter() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
                text = seen.decode("utf-8", errors="replace")
                at = text.find(marker)
                if at >= 0 and text[at + len(marker) :].strip():
                    first = time.perf_counter() - t0
        if first is None:
            proc.kill()
        out, err = proc.communicate(timeout=120)
        if first is None or proc.returncode != 0:
            why = (err or out or seen).decode("utf-8", errors="replace").strip().splitlines()
            print(f"(c) skipped: CLI unavailable ({why[-1] if why else proc.returncode})")
            return
        total = time.perf_counter() - t0
    print("(c) `sparring run` subprocess, smollm2:135m, --backend local")
    line("    start to first streamed token", f"{first:7.2f} s")
    line("    start to exit", f"{total:7.2f} s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128, help="num_predict for (a)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds for (a); medians")
    parser.add_argument("--no-cli", action="store_true", help="skip (c)")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, model file: {resolve_model(MODEL).path.name}")
    backend = LocalBackend(BackendSettings())
    try:
        await bench_throughput(backend, args.tokens, args.rounds)
        await bench_concurrency(backend, 48, 4)
    finally:
        await backend.aclose()
        unload_all()
    if args.no_cli:
        print("(c) skipped: --no-cli")
    else:
        bench_cli()


if __name__ == "__main__":
    print(textwrap.dedent(__doc__ or "").strip().splitlines()[0])
    asyncio.run(main())
