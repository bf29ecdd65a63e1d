"""How long the command line takes to start, as ratios to the interpreter's own start.

Machines running this are shared and their timings drift, so each command is timed in
rounds interleaved with a baseline measured in the same run (``python -c pass``) and
reported as the ratio of the medians: a figure that compares across runs and machines
where seconds would not.

1. ``sparring --version``: parsing the command line and nothing else.
2. ``sparring run``: scenarios/quickstart.yaml for two turns (its opening and one reply)
   against the fake ollama server (a separate process, no token delay): loading and
   resolving the scenario, choosing and checking the engine, one request, a transcript.

Run: .venv/bin/python bench/startup.py [--rounds N] [--tree DIR]
``--tree`` times another checkout of sparring (for example the commit before a change)
with this environment's interpreter and dependencies.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.ports import free_port  # noqa: E402

MODEL = "smollm2:135m"  # quickstart.yaml's model, served by the fake


def wait_for_port(port: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the fake ollama server did not listen on port {port}")


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timings per command")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to time")
    args = parser.parse_args()
    tree = args.tree.resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OPENAI_"))}
    # The checkout's own packages come first, whatever this environment has installed.
    env["PYTHONPATH"] = str(tree)
    env["NO_COLOR"] = "1"
    python = sys.executable
    port = free_port()
    server = subprocess.Popen(
        [python, "-m", "tests.fakes.ollama_server", "--port", str(port), "--model", MODEL,
         "--token-delay", "0", "--concede-after", "0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        with tempfile.TemporaryDirectory(prefix="sparring-startup-") as out:
            commands = {
                "sparring --version": [python, "-m", "runner.cli", "--version"],
                "sparring run": [
                    python, "-m", "runner.cli", "run", str(ROOT / "scenarios" / "quickstart.yaml"),
                    "--backend", "ollama", "--host", f"http://127.0.0.1:{port}",
                    "--max-turns", "2", "--quiet", "--out", out,
                ],
            }  # fmt: skip
            baseline = [python, "-c", "pass"]
            times: dict[str, list[float]] = {"python -c pass": [], **{k: [] for k in commands}}
            for command in commands.values():  # once each, untimed: warm the file cache
                timed(command, env, tree)
            for _ in range(args.rounds):
                times["python -c pass"].append(timed(baseline, env, tree))
                for name, command in commands.items():
                    times[name].append(timed(command, env, tree))
    finally:
        server.terminate()
        server.wait(timeout=10)
    base = statistics.median(times["python -c pass"])
    print(f"{tree}: {args.rounds} rounds, medians")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<20} {median * 1000:8.0f} ms  {median / base:6.1f}x the baseline")


if __name__ == "__main__":
    main()
