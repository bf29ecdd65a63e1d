"""Tournament scheduling against a server that holds few models, printed as figures.

The fake ollama server is given a limit on loaded models and a delay per load (as ollama's
scheduler behaves: OLLAMA_MAX_LOADED_MODELS, seconds per load), and parallel slots. The
same round robin is played three ways:

1. sparring's scheduler (``sparring tournament run``): games in model blocks;
2. the same games started all at once, as plain conversations (no ordering by model);
3. the origin lesson's loop: one game at a time, in pairing order.

For each: wall time (as a ratio to the scheduler's), model loads the server performed
against the lower bound, and slot utilisation while work remained: the slot-seconds spent
generating divided by slots x wall time. Aims: loads within 10% of the lower bound and
utilisation of 90% or more for the scheduler.

Run: .venv/bin/python bench/tournament.py [--models N] [--max-loaded M] [--load-delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.logs import configure  # noqa: E402
from runner.model.generate import RetryPolicy  # noqa: E402
from runner.model.pool import BackendPool  # noqa: E402
from runner.play.conversation import Plan  # noqa: E402
from runner.run.orchestrator import iter_conversations  # noqa: E402
from runner.settings import RunSettings  # noqa: E402
from runner.tournament.games import all_games, game_scenario  # noqa: E402
from runner.tournament.play import PlaySettings, play  # noqa: E402
from runner.tournament.schedule import load_lower_bound  # noqa: E402
from runner.tournament.spec import Tournament, load_tournament  # noqa: E402
from runner.transcript import iter_transcripts  # noqa: E402
from tests.fakes.ollama_server import FakeOllama  # noqa: E402

SCENARIO = """\
name: bench-duel
agents:
  - {name: opener, model: x, persona: You argue., opening: "Let us argue."}
  - {name: replier, model: x, persona: You argue back.}
max_turns: 9
end: [{phrase: "I lost", outcome: speaker_loses}]
"""


def write(folder: Path, models: list[str], games: int) -> Tournament:
    (folder / "duel.yaml").write_text(SCENARIO, encoding="utf-8")
    entrants = "\n".join(f"  - {m}" for m in models)
    path = folder / "bench.yaml"
    path.write_text(
        f"name: bench\nscenario: duel.yaml\nentrants:\n{entrants}\ngames: {games}\nseed: 3\n",
        encoding="utf-8",
    )
    return load_tournament(path)


def busy_seconds(folder: Path) -> float:
    """Slot-seconds spent generating: each reply's time minus the load it waited for."""
    total = 0.0
    files = [p for p in folder.rglob("*.jsonl") if p.name != "results.jsonl"]
    for transcript in iter_transcripts(files):
        for turn in transcript.turns:
            if turn.latency_ms is not None:
                total += (turn.latency_ms - turn.server.get("load_ms", 0.0)) / 1000
    return total


async def plain(
    tournament: Tournament, url: str, out: Path, slots: int, at_once: int, ordered: bool
) -> None:
    """The tournament's games as plain conversations: all at once, or one by one."""
    settings = RunSettings(
        out_dir=out, backend="ollama", hosts=(url,), concurrency=slots,
        retry=RetryPolicy(attempts=3, base=0.01),
    )  # fmt: skip
    games = all_games(tournament)
    if not ordered:
        games.sort(key=lambda g: g.id)  # arrival order unrelated to the models they need
    async with BackendPool(settings) as pool:
        plans = []
        for i, game in enumerate(games):
            scenario = game_scenario(tournament, game)
            models = {a.name: await pool.bind(scenario, a) for a in scenario.agents}
            plans.append(Plan(scenario, game.number, game.seed, tournament.seed, models, i))
        async for _ in iter_conversations(plans, settings, max_conversations=at_once):
            pass


async def measure(
    name: str, args: argparse.Namespace, tournament: Tournament
) -> tuple[float, int, float]:
    models = [e.model for e in tournament.entrants]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        async with FakeOllama(
            models, token_delay=args.token_delay, parallel=args.slots,
            max_loaded=args.max_loaded, load_delay=args.load_delay,
        ) as fake:  # fmt: skip
            t0 = time.perf_counter()
            if name == "scheduler":
                run = RunSettings(
                    out_dir=out, backend="ollama", hosts=(fake.url,), concurrency=args.slots,
                    retry=RetryPolicy(attempts=3, base=0.01),
                )  # fmt: skip
                await play(tournament, PlaySettings(out=out, run=run, max_loaded=args.max_loaded))
            elif name == "all at once":
                await plain(
                    tournament, fake.url, out, args.slots, len(all_games(tournament)), False
                )
            else:
                await plain(tournament, fake.url, out, 1, 1, True)
            wall = time.perf_counter() - t0
            assert fake.residency is not None
            loads = sum(fake.residency.loads.values())
        busy = busy_seconds(out)
    return wall, loads, busy / (args.slots * wall)


async def main(args: argparse.Namespace) -> None:
    models = [f"model{i}:1b" for i in range(args.models)]
    with tempfile.TemporaryDirectory() as folder:
        tournament = write(Path(folder), models, args.games)
    pairs = [frozenset(p) for p in itertools.combinations(models, 2)]
    bound = load_lower_bound(pairs, args.max_loaded)
    games = len(all_games(tournament))
    print(
        f"round robin: {args.models} models, {games} games; server holds {args.max_loaded} "
        f"models, {args.load_delay:g} s per load, {args.slots} slots, "
        f"{args.token_delay * 1000:g} ms per token; lower bound on loads: {bound}"
    )
    base: float | None = None
    for name in ("scheduler", "all at once", "one at a time"):
        wall, loads, used = await measure(name, args, tournament)
        base = base or wall
        print(
            f"  {name:<14} wall {wall:7.2f} s ({wall / base:4.2f}x)  loads {loads:3d} "
            f"({loads / bound:4.2f}x the bound)  slot utilisation {used:6.1%}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--games", type=int, default=4, help="games per pairing and seat order")
    parser.add_argument("--max-loaded", type=int, default=3)
    parser.add_argument("--load-delay", type=float, default=1.0)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--token-delay", type=float, default=0.02)
    configure(fmt="console")
    asyncio.run(main(parser.parse_args()))
