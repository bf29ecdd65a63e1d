"""The embedded engine at generation speed, on smollm2:135m. Prints figures; asserts nothing.

    .venv/bin/python bench/engines.py [--turns 21] [--tokens 32] [--games 5] [--rounds 5]

Games are the classroom game (scenarios/i-lost.yaml) with smollm2:135m on both sides,
temperature 0, a fixed seed per game, replies of at most --tokens tokens and no end rule,
so every game runs --turns turns. They run through runner.run.orchestrator.run_scenarios.

(a) --games games, each alone: prompt evaluation's share of engine time, tokens evaluated
    and generated per turn, engine time per turn at turn 2 against turn 20 (medians over
    the games), how each turn found its side's context (hit, miss, new);
(b) --games games on one model, against the same games each run alone, one after
    another: the wall time as a ratio to the sum of the games alone, and when the first
    one finishes as a share of the whole run; the games' text must not change;
(c) tokens per second of one reply: llama-cpp-python called directly, against the same
    request through sparring's LocalBackend and runner.model.generate.generate(), with the model
    in a worker process (the default) and in this process; first-token times of both; and
    direct llama-cpp-python with one thread per core against one thread fewer;
(d) batched decoding: llama.cpp decoding 1, 2 and 4 sequences per step, tokens per
    second, and whether a sequence's logits stay the same in a batch;
(e) time from starting ``sparring run`` to its first streamed token.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import select
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.backends.base import ChatRequest, Message, Timeouts  # noqa: E402
from agents.backends.config import GenerateConfig  # noqa: E402
from agents.backends.local import engine as llama_engine  # noqa: E402
from agents.backends.local.backend import DEFAULT_NUM_CTX, LocalBackend, completion_kwargs  # noqa: E402
from agents.backends.local.gguf import resolve_model  # noqa: E402
from runner.logs import configure as configure_logs  # noqa: E402
from runner.model.generate import RetryPolicy, generate  # noqa: E402
from runner.model.pool import BackendPool  # noqa: E402
from runner.play.events import ConversationFinished, Observer  # noqa: E402
from runner.run.orchestrator import run_scenarios  # noqa: E402
from runner.scenario.schema import ResolvedScenario, scenario_from_data  # noqa: E402
from runner.settings import RunSettings  # noqa: E402
from runner.transcript import Transcript, TurnRecord, read_transcript  # noqa: E402

MODEL = "smollm2:135m"
SEED = 20241124


def engine_threads() -> int:
    """The threads the engine loads models with (every core, where it cannot say)."""
    threads = getattr(llama_engine, "threads", None)
    return threads() if threads else os.cpu_count() or 1


def line(label: str, value: str) -> None:
    print(f"{label:<56} {value}", flush=True)


def ratio(x: float, base: float) -> str:
    return f"{x / base:6.2f}x" if base else "   n/a"


# --- games through run_scenarios --------------------------------------------------------------


def game(index: int, turns: int, tokens: int) -> ResolvedScenario:
    data = yaml.safe_load((ROOT / "scenarios" / "i-lost.yaml").read_text(encoding="utf-8"))
    for agent in data["agents"]:
        agent["model"] = MODEL
        # At temperature 0 the seed changes nothing: a word in the persona makes each game
        # its own, with its own replies and lengths.
        agent["persona"] = f"{agent['persona'].strip()} (Game {index + 1}.)"
    data.pop("end", None)  # every game runs all its turns
    data.update(name=f"bench-game-{index}", max_turns=turns, seed=SEED + index)
    data["defaults"] = {"options": {"temperature": 0, "num_predict": tokens}}
    return scenario_from_data(data)


class Finishes(Observer):
    def __init__(self) -> None:
        self.at: list[float] = []

    def conversation_finished(self, event: ConversationFinished) -> None:
        self.at.append(time.perf_counter())


@dataclasses.dataclass
class Run:
    wall: float
    first_finish: float
    transcripts: list[Transcript]
    contexts: dict[str, int]


def settings_for(out: Path, concurrency: int, conversations: int | None) -> RunSettings:
    fields = {f.name for f in dataclasses.fields(RunSettings)}
    limits: dict[str, Any] = {"concurrency": concurrency}
    if conversations is not None and "max_conversations" in fields:
        limits["max_conversations"] = conversations
    return RunSettings(out_dir=out, **limits)


async def play(
    backend: LocalBackend,
    scenarios: Sequence[ResolvedScenario],
    concurrency: int = 1,
    conversations: int | None = None,
) -> Run:
    before = _contexts()
    finishes = Finishes()
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(Path(tmp), concurrency, conversations)
        t0 = time.perf_counter()
        async with BackendPool.fixed(backend, settings) as pool:
            results = await run_scenarios(scenarios, settings, pool=pool, observer=finishes)
            wall = time.perf_counter() - t0
            after = _contexts()
        transcripts = [read_transcript(r.path) for r in results]
    contexts = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    first = min(finishes.at) - t0 if finishes.at else wall
    return Run(wall, first, transcripts, contexts)


def _contexts() -> Counter[str]:
    total: Counter[str] = Counter()
    for stats in llama_engine.loaded_engines().values():
        total.update(getattr(stats, "contexts", {}))  # absent where contexts are not kept
    return total


def engine_ms(turn: TurnRecord, key: str = "total_ms") -> float:
    return (turn.server or {}).get(key, 0.0)


def texts(transcripts: Sequence[Transcript]) -> list[list[str]]:
    ordered = sorted(transcripts, key=lambda t: t.run.scenario)
    return [[turn.content for turn in t.turns] for t in ordered]


def report_games(runs: Sequence[Run]) -> None:
    """Sums over every turn of the games; per-turn figures are medians over the games."""
    transcripts = [t for run in runs for t in run.transcripts]
    generated = [t for tr in transcripts for t in tr.turns if not t.scripted]
    total = sum(engine_ms(t) for t in generated)
    prompt = sum(engine_ms(t, "prompt_eval_ms") for t in generated)
    read = [(t.prompt_tokens or 0) - int(engine_ms(t, "prompt_cached_tokens")) for t in generated]
    written = [t.completion_tokens or 0 for t in generated]
    line("    engine time, all games", f"{total / 1000:7.1f} s")
    line("    prompt evaluation share of engine time", f"{prompt / total:7.1%}")
    per_turn = f"{statistics.mean(read):.0f} / {statistics.mean(written):.0f}"
    line("    prompt tokens evaluated / tokens generated, per turn", per_turn)
    last = min(len(tr.turns) for tr in transcripts) - 2  # the last turn but one: turn 20 of 21
    if last > 1:
        early = [tr.turns[1] for tr in transcripts]
        late = [tr.turns[last] for tr in transcripts]
        for label, turns in (("turn 2", early), (f"turn {last + 1}", late)):
            ms = statistics.median(engine_ms(t) for t in turns)
            reading = statistics.median(engine_ms(t, "prompt_eval_ms") for t in turns)
            prompt_len = statistics.median(t.prompt_tokens or 0 for t in turns)
            detail = f"{reading:.0f} ms of it reading a {prompt_len:.0f}-token prompt"
            line(f"    engine time, {label}", f"{ms:7.0f} ms ({detail})")
        e_ms = statistics.median(engine_ms(t) for t in early)
        l_ms = statistics.median(engine_ms(t) for t in late)
        line(f"    ratio turn {last + 1} / turn 2", ratio(l_ms, e_ms))
    contexts: Counter[str] = Counter()
    for run in runs:
        contexts.update(run.contexts)
    line("    contexts (hit / miss / new)", _hits(dict(contexts)))


def _hits(contexts: dict[str, int]) -> str:
    if not contexts:
        return "not reported (contexts are not kept)"
    return " / ".join(str(contexts.get(k, 0)) for k in ("hit", "miss", "new"))


async def bench_games(turns: int, tokens: int, games: int, sections: str) -> None:
    """Every run gets a backend of its own (its pool closes it); the model stays loaded."""
    scenarios = [game(i, turns, tokens) for i in range(games)]
    await play(LocalBackend(), [game(games, 3, tokens)])  # warm the model up first
    alone = [await play(LocalBackend(), [s]) for s in scenarios]
    print(f"(a) {games} {turns}-turn games, each alone, {tokens}-token replies, both sides {MODEL}")
    report_games(alone)
    if "b" not in sections:
        return
    alone_sum = sum(r.wall for r in alone)
    alone_texts = [text for r in alone for text in texts(r.transcripts)]
    print(f"(b) {games} games on one model; baseline: each alone, {alone_sum:.1f} s in all")
    modes = [
        ("all alive, one request at a time", 1, games),
        (f"all alive, {games} requests queued in the engine", games, games),
    ]
    if "max_conversations" in {f.name for f in dataclasses.fields(RunSettings)}:
        modes.append(("one conversation at a time (max_conversations=1)", 1, 1))
    for label, concurrency, conversations in modes:
        run = await play(LocalBackend(), scenarios, concurrency, conversations)
        print(f"    {label}")
        line("      wall time / sum of the games alone", ratio(run.wall, alone_sum))
        share = run.first_finish / run.wall
        line("      first game finished at, share of the run", f"{share:7.1%}")
        line("      contexts (hit / miss / new)", _hits(run.contexts))
        line("      same text as alone", str(texts(run.transcripts) == alone_texts))


# --- (c) direct vs through sparring -----------------------------------------------------------

MESSAGES: list[Message] = [
    {"role": "system", "content": "You are a storyteller."},
    {"role": "user", "content": "Write a long story about a dragon who learns to cook."},
]


def direct_once(llm: Any, config: GenerateConfig) -> tuple[float, float, str]:
    llm.reset()
    t0 = time.perf_counter()
    first: float | None = None
    pieces = []
    for chunk in llm.create_chat_completion(
        messages=[dict(m) for m in MESSAGES], stream=True, **completion_kwargs(config)
    ):
        if text := chunk["choices"][0]["delta"].get("content"):
            first = first or time.perf_counter()
            pieces.append(text)
    end = time.perf_counter()
    return end - t0, end - (first or end), "".join(pieces)


async def sparring_once(
    backend: LocalBackend, config: GenerateConfig
) -> tuple[float, float, str, float, float]:
    """Whole reply, generation after the first token, text, first token (seconds), and the
    engine's own generation rate (tokens/s, as the process running the model timed it)."""
    result = await generate(
        backend,
        ChatRequest(MODEL, MESSAGES, config, session="bench/storyteller"),
        timeouts=Timeouts(),
        retry=RetryPolicy(attempts=1),
    )
    latency, ttft = result.latency_ms / 1000, (result.ttft_ms or 0) / 1000
    eval_s = result.final.server.get("eval_ms", 0.0) / 1000
    rate = (result.final.completion_tokens or 0) / eval_s if eval_s else 0.0
    return latency, latency - ttft, result.text, ttft, rate


def in_process_backend() -> LocalBackend:
    """A LocalBackend whose models load in this process (SPARRING_LOCAL_IN_PROCESS=1)."""
    saved = os.environ.get(llama_engine.IN_PROCESS_ENV)
    os.environ[llama_engine.IN_PROCESS_ENV] = "1"
    try:
        return LocalBackend()
    finally:
        if saved is None:
            del os.environ[llama_engine.IN_PROCESS_ENV]
        else:
            os.environ[llama_engine.IN_PROCESS_ENV] = saved


async def bench_throughput(backend: LocalBackend, tokens: int, rounds: int) -> None:
    """Direct llama-cpp-python, and LocalBackend with the model in this process and in a
    worker process (the default), alternating which goes first."""
    import llama_cpp

    config = GenerateConfig(temperature=0, seed=1, num_predict=tokens)
    llm = llama_cpp.Llama(
        model_path=str(resolve_model(MODEL).path),
        n_ctx=DEFAULT_NUM_CTX,
        n_threads=engine_threads(),  # as the engine loads it
        verbose=False,
    )
    inproc = in_process_backend()
    direct_once(llm, config)  # warm-up all three
    await sparring_once(backend, config)
    await sparring_once(inproc, config)
    direct: list[tuple[float, float, str]] = []
    worker: list[tuple[float, float, str, float, float]] = []
    inside: list[tuple[float, float, str, float, float]] = []
    for i in range(rounds):
        # Rotate the order: this machine's background load is not constant.
        steps = ["direct", "worker", "inside"]
        for step in steps[i % 3 :] + steps[: i % 3]:
            if step == "direct":
                direct.append(direct_once(llm, config))
            elif step == "worker":
                worker.append(await sparring_once(backend, config))
            else:
                inside.append(await sparring_once(inproc, config))
    n = len(llm.tokenize(worker[0][2].encode(), add_bos=False))
    llm.close()
    await inproc.aclose()
    same = all(d[2] == w[2] == p[2] for d, w, p in zip(direct, worker, inside, strict=True))

    def whole(runs: Sequence[tuple[Any, ...]]) -> float:
        return n / statistics.median(x[0] for x in runs)

    def gen(runs: Sequence[tuple[Any, ...]]) -> float:
        # Generation after the first token: from the first streamed text to the end.
        return statistics.median((n - 1) / x[1] for x in runs if x[1] > 0)

    def first(runs: Sequence[tuple[float, float, str, float, float]]) -> float:
        return statistics.median(x[3] for x in runs) * 1000

    def paired(key: Callable[[tuple[Any, ...]], float]) -> float:
        # Each round's worker run against its in-process run: the machine's load drifts.
        return statistics.median(key(w) / key(p) for w, p in zip(worker, inside, strict=True))

    print(f"(c) one reply, {MODEL}, greedy, about {n} tokens, median of {rounds}")
    line("    same text all three ways", str(same))
    for label, runs in (
        ("llama-cpp-python direct", direct),
        ("LocalBackend, model in this process", inside),
        ("LocalBackend, model in a worker process", worker),
    ):
        line(f"    {label}, whole reply", f"{whole(runs):7.1f} tok/s")
        line(f"    {label}, after the first token", f"{gen(runs):7.1f} tok/s")
    line("    in-process / direct, whole reply", f"{whole(inside) / whole(direct):7.1%}")
    line("    worker / in-process, whole reply (paired)", f"{paired(lambda x: 1 / x[0]):7.1%}")
    gen_ratio = paired(lambda x: 1 / x[1] if x[1] else 0.0)
    line("    worker / in-process, after the first token (paired)", f"{gen_ratio:7.1%}")
    engine_side = paired(lambda x: x[4])
    line("    worker / in-process, engine's own generation rate", f"{engine_side:7.1%}")
    line("    first token, in-process", f"{first(inside):7.1f} ms")
    line("    first token, worker", f"{first(worker):7.1f} ms")
    line("    first token, worker - in-process", f"{first(worker) - first(inside):+7.1f} ms")


def bench_threads(tokens: int, rounds: int) -> None:
    """Direct llama-cpp-python generation with one thread per core against one fewer."""
    import llama_cpp

    config = GenerateConfig(temperature=0, seed=1, num_predict=tokens)
    cores = os.cpu_count() or 1
    counts = sorted({cores, max(1, cores - 1)})
    models = {
        n: llama_cpp.Llama(
            model_path=str(resolve_model(MODEL).path),
            n_ctx=DEFAULT_NUM_CTX,
            n_threads=n,
            verbose=False,
        )
        for n in counts
    }
    times: dict[int, list[float]] = {n: [] for n in counts}
    for i in range(rounds):
        for n in counts if i % 2 == 0 else counts[::-1]:
            total, _, text = direct_once(models[n], config)
            times[n].append(total)
    n_tokens = len(models[counts[0]].tokenize(text.encode(), add_bos=False))
    for llm in models.values():
        llm.close()
    print(f"    llama-cpp-python direct by thread count ({cores} cores), median of {rounds}")
    for n in counts:
        rate = n_tokens / statistics.median(times[n])
        line(f"      {n} thread(s), whole reply", f"{rate:7.1f} tok/s")


# --- (d) several sequences per decode step ----------------------------------------------------


class Batcher:
    """A second llama.cpp context on the model, holding up to four sequences."""

    def __init__(self, llm: Any, prompt: Sequence[int]) -> None:
        import llama_cpp

        self.lib, self.prompt = llama_cpp, list(prompt)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch, params.n_seq_max = 4096, 512, 512, 4
        params.n_threads = params.n_threads_batch = engine_threads()
        params.kv_unified = True
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as Llama() has it
        self.ctx = llama_cpp.llama_init_from_model(llm.model, params)
        self.batch = llama_cpp.llama_batch_init(512, 0, 4)
        self.n_vocab = llm.n_vocab()

    def decode(self, entries: Sequence[tuple[int, int, int]]) -> None:
        """Decode (token, position, sequence) entries in one batch, logits for each."""
        b = self.batch
        for i, (token, pos, seq) in enumerate(entries):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, True
            b.seq_id[i][0] = seq
        b.n_tokens = len(entries)
        if self.lib.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def run(self, sequences: int, steps: int) -> tuple[float, list[float]]:
        """Tokens per second decoding ``sequences`` at once; sequence 0's last logits."""
        self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)
        n = len(self.prompt)
        for seq in range(sequences):
            self.decode([(t, p, seq) for p, t in enumerate(self.prompt)])
        t0 = time.perf_counter()
        for step in range(steps):
            token = self.prompt[step % n]
            self.decode([(token, n + step, seq) for seq in range(sequences)])
        elapsed = time.perf_counter() - t0
        logits = self.lib.llama_get_logits_ith(self.ctx, 0)
        return sequences * steps / elapsed, [logits[i] for i in range(self.n_vocab)]

    def close(self) -> None:
        self.lib.llama_batch_free(self.batch)
        self.lib.llama_free(self.ctx)


def bench_batching(steps: int, rounds: int) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(resolve_model(MODEL).path), n_ctx=256, n_threads=1, verbose=False
    )
    prompt = llm.tokenize(b"A dragon learns to cook. " * 12, add_bos=True)
    batcher = Batcher(llm, prompt)
    widths = (1, 2, 4)
    runs: dict[int, list[float]] = {k: [] for k in widths}
    logits: dict[int, list[float]] = {}
    try:
        batcher.run(1, 4)  # warm-up
        for i in range(rounds):
            # Alternate the order: this machine's background load is not constant.
            for k in widths if i % 2 == 0 else widths[::-1]:
                rate, logits[k] = batcher.run(k, steps)
                runs[k].append(rate)
    finally:
        batcher.close()
        llm.close()
    rates = {k: statistics.median(runs[k]) for k in widths}
    print(f"(d) llama.cpp decode steps, {MODEL}, {len(prompt)}-token context, {steps} steps,")
    print(f"    median of {rounds}")
    for k in widths:
        gain = ratio(rates[k], rates[1])
        line(f"    {k} sequence(s) per step", f"{rates[k]:7.1f} tok/s ({gain})")
    same = f"{logits[1] == logits[2]} / {logits[1] == logits[4]}"
    line("    sequence 0's logits alone = in a batch of 2 / 4", same)


# --- (e) CLI start to first token ------------------------------------------------------------

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


def cli_once(in_process: bool) -> tuple[float, float] | str:
    """Seconds from starting ``sparring run`` to its first streamed token and to its exit,
    or why it could not run."""
    marker = f"({MODEL}): "
    env = {k: v for k, v in os.environ.items() if k != llama_engine.IN_PROCESS_ENV}
    if in_process:
        env[llama_engine.IN_PROCESS_ENV] = "1"
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
                argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env
            )
        except OSError as exc:
            return str(exc)
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
            return why[-1] if why else str(proc.returncode)
        return first, time.perf_counter() - t0


def bench_cli(rounds: int) -> None:
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for i in range(rounds):
        for in_process in (False, True) if i % 2 == 0 else (True, False):
            result = cli_once(in_process)
            if isinstance(result, str):
                print(f"(e) skipped: CLI unavailable ({result})")
                return
            runs[in_process].append(result)
    print(f"(e) `sparring run` subprocess, smollm2:135m, --backend local, median of {rounds}")
    for in_process, label in ((True, "model in sparring's process"), (False, "worker process")):
        first = statistics.median(r[0] for r in runs[in_process])
        total = statistics.median(r[1] for r in runs[in_process])
        line(f"    {label}: start to first streamed token", f"{first:7.2f} s")
        line(f"    {label}: start to exit", f"{total:7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=21, help="turns per game")
    parser.add_argument("--tokens", type=int, default=32, help="num_predict per reply")
    parser.add_argument("--games", type=int, default=5, help="games on one model in (b)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds for (c); medians")
    parser.add_argument("--only", default="abcde", help="sections to run, e.g. 'cd'")
    args = parser.parse_args()
    configure_logs(fmt="console")  # warnings only, on stderr
    print(textwrap.dedent(__doc__ or "").strip().splitlines()[0])
    print(f"cpus: {os.cpu_count()}, model file: {resolve_model(MODEL).path.name}")
    LocalBackend()  # reads SPARRING_LOCAL_STATE_MB and SPARRING_LOCAL_THREADS
    budget = f"{llama_engine.budget() / 2**20:.0f} MiB"
    print(f"engine threads: {engine_threads()}, saved-context budget: {budget}")
    asyncio.run(_engine_sections(args))
    if "d" in args.only:
        bench_batching(48, args.rounds)
    if "e" in args.only:
        bench_cli(args.rounds)


async def _engine_sections(args: argparse.Namespace) -> None:
    backend = LocalBackend()  # loads the model once, for every section
    hi: list[Message] = [{"role": "user", "content": "Hi"}]
    request = ChatRequest(MODEL, hi, GenerateConfig(num_predict=1))
    await generate(backend, request, timeouts=Timeouts(), retry=RetryPolicy(attempts=1))
    try:
        if "a" in args.only or "b" in args.only:
            await bench_games(args.turns, args.tokens, args.games, args.only)
        if "c" in args.only:
            await bench_throughput(backend, 128, args.rounds)
            bench_threads(128, args.rounds)
    finally:
        await backend.aclose()
        llama_engine.unload_all()


if __name__ == "__main__":
    main()
