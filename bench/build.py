"""What the portable llama.cpp build costs: tokens/s of each build, on both built-in models.

    .venv/bin/python bench/build.py [--rounds 5] [--tokens 96] [--builds native,portable,baseline]

Each build of scripts/engine.py (``native`` is what pip compiles by default, here the
baseline of the ratios; ``portable`` is what set-up installs; ``baseline`` is its fallback
with every optional x86 instruction set off) is installed in a virtual environment of its
own under a temporary folder, from the wheel folder set-up keeps (compiling a build that is
missing: minutes). Every build runs the same greedy request in a child process per round,
the builds' order alternating between rounds because this machine's load is not constant:
prompt evaluation and generation tokens per second, medians over the rounds, and their
ratio to the native build. On a machine where native dies (AMX a VM does not grant), its
row says so and the ratios are against portable.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.backends.local.gguf import resolve_model  # noqa: E402

MODELS = ("smollm2:135m", "gemma3:270m")

# Run in each build's environment: one greedy reply, timed by llama.cpp's own counters.
MEASURE = """\
import json, sys, llama_cpp
path, tokens, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=threads, verbose=False)
prompt = "Write a long story about a dragon who learns to cook. " * 8
llm.create_completion(prompt, max_tokens=4, temperature=0)  # warm-up
llm.reset()
llama_cpp.llama_perf_context_reset(llm.ctx)
out = llm.create_completion(prompt, max_tokens=tokens, temperature=0)
perf = llama_cpp.llama_perf_context(llm.ctx)
print(json.dumps({
    "prompt_tps": perf.n_p_eval / (perf.t_p_eval_ms / 1000),
    "gen_tps": perf.n_eval / (perf.t_eval_ms / 1000),
    "text": out["choices"][0]["text"],
}))
"""


def load_engine_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("engine_setup", ROOT / "scripts" / "engine.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def environment(engine: ModuleType, build: str, where: Path) -> Path:
    """A venv with ``build``'s wheel installed; its python."""
    folder = where / build
    venv.create(folder, with_pip=True)
    python = engine.venv_python(folder)
    wheel = engine.wheel_for(Path(sys.executable), engine.build_named(build))
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    subprocess.run([*pip, str(wheel)], check=True)
    return python


def measure(python: Path, model: Path, tokens: int, threads: int) -> dict[str, object] | str:
    done = subprocess.run(
        [str(python), "-c", MEASURE, str(model), str(tokens), str(threads)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        engine = load_engine_script()
        return engine.describe(done.returncode)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--builds", default="native,portable,baseline")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    args = parser.parse_args()
    engine = load_engine_script()
    builds = args.builds.split(",")
    print((__doc__ or "").splitlines()[0])
    cpu = engine.read_cpuinfo()
    print(f"cpu: {engine.cpu_name(cpu)}, {os.cpu_count()} cores, {args.threads} thread(s)")
    for build in builds:
        print(f"  {build:<9} {engine.build_named(build).cmake_args or '(pip default: native)'}")
    with tempfile.TemporaryDirectory(prefix="sparring-bench-build-") as tmp:
        pythons = {build: environment(engine, build, Path(tmp)) for build in builds}
        for name in MODELS:
            path = resolve_model(name).path
            runs: dict[str, list[dict[str, object]]] = {b: [] for b in builds}
            failed: dict[str, str] = {}
            for i in range(args.rounds):
                for build in builds if i % 2 == 0 else builds[::-1]:
                    if build in failed:
                        continue
                    result = measure(pythons[build], path, args.tokens, args.threads)
                    if isinstance(result, str):
                        failed[build] = result
                    else:
                        runs[build].append(result)
            report(name, args, builds, runs, failed)


def report(
    name: str,
    args: argparse.Namespace,
    builds: list[str],
    runs: dict[str, list[dict[str, object]]],
    failed: dict[str, str],
) -> None:
    print(f"\n{name}, greedy, {args.tokens} tokens, median of {args.rounds} rounds")
    keys = ("prompt_tps", "gen_tps")
    medians = {
        b: {k: statistics.median(float(str(r[k])) for r in runs[b]) for k in keys}
        for b in builds
        if runs[b]
    }
    base = next((b for b in ("native", "portable") if b in medians), None)
    texts = {b: {str(r["text"]) for r in runs[b]} for b in builds if runs[b]}
    print(f"  {'build':<9} {'prompt tok/s':>13} {'ratio':>7} {'generate tok/s':>15} {'ratio':>7}")
    for build in builds:
        if build in failed:
            print(f"  {build:<9} {failed[build]}")
            continue
        m = medians[build]
        assert base is not None
        pr = m["prompt_tps"] / medians[base]["prompt_tps"]
        gr = m["gen_tps"] / medians[base]["gen_tps"]
        print(f"  {build:<9} {m['prompt_tps']:13.1f} {pr:6.2f}x {m['gen_tps']:15.1f} {gr:6.2f}x")
    assert base is not None
    same = ", ".join(
        f"{b} {'yes' if texts[b] == texts[base] else 'no'}" for b in texts if b != base
    )
    print(f"  same text as {base}: {same}")


if __name__ == "__main__":
    main()
