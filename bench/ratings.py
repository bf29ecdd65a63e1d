"""``sparring leaderboard FILE`` on a large results table: time and peak memory, printed.

Generates a table of G games (default one million) among E entrants (default a hundred,
every ordered pair playing, a tenth of the games drawn, the first seat a little ahead) as
one game a CSV line, the same games as JSON lines, and the same games counted per pair;
then runs, each in a fresh process so that peak memory is its own:

- the baseline: Python's csv module reading every line of the games CSV, nothing else
  (what any reader of the file pays; its time), then importing what the command imports
  (its peak memory: the interpreter with numpy, scipy and the CLI loaded), and
- ``sparring leaderboard FILE --format json`` (the real command: read, count, fit, 1,000
  bootstrap refits, write) on each table, and on a table of the same pairs with a
  hundredth of the games,

and prints wall time, the time spent reading and rating, and peak resident memory, with
the leaderboard's time and memory as multiples of the baseline's, and the 1% table's time
against the full one's (the fit costs what the pairs cost, not the games).

Run: .venv/bin/python bench/ratings.py [--games 1000000] [--entrants 100] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run in a child: the command in-process, timed in its parts, with its own peak memory.
LEADERBOARD = """
import io, json, resource, sys, time
from contextlib import redirect_stdout
started = time.perf_counter()
from runner.cli import main
from runner.tournament import fit, table
imported, cpu_imported = time.perf_counter(), time.process_time()
read = table.read_table
spent = {"read": 0.0, "read_cpu": 0.0}
def timed(path):
    t, c = time.perf_counter(), time.process_time()
    try:
        return read(path)
    finally:
        spent["read"] += time.perf_counter() - t
        spent["read_cpu"] += time.process_time() - c
table.read_table = timed
out = io.StringIO()
with redirect_stdout(out):
    code = main(["leaderboard", sys.argv[1], "--format", "json", "--rounds", sys.argv[2]])
done, cpu_done = time.perf_counter(), time.process_time()
board = json.loads(out.getvalue())
print(json.dumps({
    "code": code, "wall": done - started, "imports": imported - started,
    "read": spent["read"], "rest": done - imported - spent["read"],
    "read_cpu": spent["read_cpu"], "rest_cpu": cpu_done - cpu_imported - spent["read_cpu"],
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "games": board["games"], "top": board["entrants"][0]["name"],
}))
"""

BASELINE = """
import csv, json, resource, sys, time
started, cpu = time.perf_counter(), time.process_time()
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = sum(1 for _ in csv.reader(f))
read, cpu_read = time.perf_counter(), time.process_time()
from runner.cli import main
from runner.tournament import fit, table
print(json.dumps({
    "wall": read - started, "cpu": cpu_read - cpu, "rows": rows,
    "imports": time.perf_counter() - read,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def write_tables(folder: Path, games: int, entrants: int, seed: int = 1) -> dict[str, Path]:
    """The games CSV, the same games as JSON lines, and their counts per pair."""
    rng = random.Random(seed)
    names = [f"model-{i:03d}" for i in range(entrants)]
    strength = {name: rng.gauss(0, 200) for name in names}
    pairs = [(a, b) for a in names for b in names if a != b]
    counts: dict[tuple[str, str], list[int]] = {pair: [0, 0, 0] for pair in pairs}
    paths = {
        "games.csv": folder / "games.csv",
        "games.jsonl": folder / "games.jsonl",
        "counts.csv": folder / "counts.csv",
    }
    with paths["games.csv"].open("w") as csv_file, paths["games.jsonl"].open("w") as jsonl:
        csv_file.write("a,b,outcome\n")
        for k in range(games):
            a, b = pairs[k % len(pairs)]
            p = 1 / (1 + 10 ** ((strength[b] - strength[a] - 30) / 400))
            u = rng.random()
            outcome, column = (
                ("draw", 1) if u < 0.1 else ("a", 0) if u < 0.1 + 0.9 * p else ("b", 2)
            )
            counts[a, b][column] += 1
            csv_file.write(f"{a},{b},{outcome}\n")
            jsonl.write(f'{{"a": "{a}", "b": "{b}", "outcome": "{outcome}"}}\n')
    with paths["counts.csv"].open("w") as f:
        f.write("a,b,wins,draws,losses\n")
        for (a, b), (w, d, lost) in counts.items():
            f.write(f"{a},{b},{w},{d},{lost}\n")
    return paths


def child(code: str, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=1_000_000)
    parser.add_argument("--entrants", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing {args.games:,} games among {args.entrants} entrants ...", flush=True)
        tables = write_tables(folder, args.games, args.entrants)
        small_folder = folder / "small"
        small_folder.mkdir()
        small = write_tables(small_folder, max(1, args.games // 100), args.entrants)["games.csv"]
        base = child(BASELINE, str(tables["games.csv"]))
        mb = tables["games.csv"].stat().st_size / 2**20
        print(
            f"baseline: the csv module reading the games CSV ({mb:.0f} MB, {base['rows']:,} "
            f"lines) {base['wall']:.2f} s ({base['cpu']:.2f} s CPU); then the command's "
            f"imports, {base['imports']:.2f} s, peak {base['rss_mb']:.0f} MB"
        )
        runs = [*tables.items(), (f"games.csv, {args.games // 100:,} games", small)]
        results = {}
        for label, path in runs:
            r = child(LEADERBOARD, str(path), str(args.rounds))
            assert r["code"] == 0, r
            results[label] = r
            size = path.stat().st_size / 2**20
            print(
                f"leaderboard {label} ({size:.1f} MB, {r['games']:,} games, {args.rounds} "
                f"rounds): {r['wall']:.2f} s; imports {r['imports']:.2f} s, reading "
                f"{r['read']:.2f} s ({r['read_cpu']:.2f} s CPU, "
                f"{r['read_cpu'] / base['cpu']:.2f}x the baseline's), rating and writing "
                f"{r['rest']:.2f} s ({r['rest_cpu']:.2f} s CPU, "
                f"{r['rest_cpu'] / base['cpu']:.2f}x the baseline's); peak "
                f"{r['rss_mb']:.0f} MB ({r['rss_mb'] / base['rss_mb']:.2f}x the imports')"
            )
        full, cut = results["games.csv"], results[runs[-1][0]]
        same = len({r["top"] for r in list(results.values())[:3]}) == 1
        print(
            f"rating {args.games:,} games took {full['rest_cpu'] / cut['rest_cpu']:.2f}x the "
            f"CPU time of {args.games // 100:,} games of the same pairs; the top entrant "
            f"{'agrees' if same else 'differs'} across the three tables"
        )
        per_game = 2 * args.games * (args.entrants + 1) * 8 / 2**20
        per_pair = math.ceil(args.entrants * (args.entrants - 1) * 5 * 8 / 1024)
        print(
            f"(a design matrix of two rows per game would take {per_game:,.0f} MB; "
            f"the pairs' counts take {per_pair} kB)"
        )


if __name__ == "__main__":
    main()
