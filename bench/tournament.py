"""Tournament scheduling against servers that hold few models, printed as figures.

The fake ollama server is given a limit on loaded models and a delay per load (as ollama's
scheduler behaves: OLLAMA_MAX_LOADED_MODELS, seconds per load), and parallel slots. For
servers holding 1, 2 and 3 models (``--holds``), the same round robin is played three ways:

1. sparring's scheduler (``sparring tournament run``) with default flags: it learns what
   the server holds from the server (it is not told), and plays games in model blocks;
2. the same games started all at once, as plain conversations (no ordering by model);
3. the origin lesson's loop: one game at a time, in pairing order.

For each: wall time (as a ratio to the scheduler's), model loads the server performed
against the lower bound, and slot utilisation while work remained: the slot-seconds spent
generating divided by slots x wall time. Aims: loads at most the lower bound plus one.
A server holding one model loads one for every turn; its lower bound comes from the turns
played (runner.tournament.schedule.turn_lower_bound), and the scheduler plays every game at
once with their turns a model at a time, round after round of the models.

Run: .venv/bin/python bench/tournament.py [--models N] [--holds 1 2 3] [--load-delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass, field
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
from runner.tournament.ledger import RESULTS, read_results  # noqa: E402
from runner.tournament.play import PlaySettings, play  # noqa: E402
from runner.tournament.schedule import load_lower_bound, turn_lower_bound  # noqa: E402
from runner.tournament.spec import Tournament, load_tournament  # noqa: E402
from runner.tournament.standings import entrant_models, played_turns  # noqa: E402
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


@dataclass(slots=True)
class Measured:
    wall: float
    loads: int
    used: float  # slot utilisation
    learned: str = ""  # what the scheduler says the server holds
    turns: list[tuple[frozenset[str], str | None, int]] = field(default_factory=list)


async def measure(
    name: str, args: argparse.Namespace, tournament: Tournament, holds: int
) -> Measured:
    models = [e.model for e in tournament.entrants]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        learned = ""
        async with FakeOllama(
            models, token_delay=args.token_delay, parallel=args.slots,
            max_loaded=holds, load_delay=args.load_delay,
        ) as fake:  # fmt: skip
            t0 = time.perf_counter()
            if name == "scheduler":
                run = RunSettings(
                    out_dir=out, backend="ollama", hosts=(fake.url,), concurrency=args.slots,
                    retry=RetryPolicy(attempts=3, base=0.01),
                )  # fmt: skip
                outcome = await play(tournament, PlaySettings(out=out, run=run))  # default flags
                learned = "; ".join(c.describe() for c in outcome.servers)
            elif name == "all at once":
                await plain(
                    tournament, fake.url, out, args.slots, len(all_games(tournament)), False
                )
            else:
                await plain(tournament, fake.url, out, 1, 1, True)
            wall = time.perf_counter() - t0
            loads = sum(fake.residency.loads.values())
        busy = busy_seconds(out)
        turns = game_turns(out) if name == "scheduler" else []
    return Measured(wall, loads, busy / (args.slots * wall), learned, turns)


def game_turns(out: Path) -> list[tuple[frozenset[str], str | None, int]]:
    """Each game's two models, the model of its first reply and its generated turns, from
    the tournament's results."""
    if not (out / RESULTS).exists():
        return []
    definition, results = read_results(out)
    return played_turns(results, entrant_models(definition))


async def main(args: argparse.Namespace) -> None:
    models = [f"model{i}:1b" for i in range(args.models)]
    with tempfile.TemporaryDirectory() as folder:
        tournament = write(Path(folder), models, args.games)
    pairs = [frozenset(p) for p in itertools.combinations(models, 2)]
    games = len(all_games(tournament))
    print(
        f"round robin: {args.models} models, {games} games; {args.load_delay:g} s per load, "
        f"{args.slots} slots, {args.token_delay * 1000:g} ms per token; sparring run with "
        "default flags (not told what the server holds)"
    )
    for holds in args.holds:
        measured = {
            name: await measure(name, args, tournament, holds)
            for name in ("scheduler", "all at once", "one at a time")
        }
        scheduler = measured["scheduler"]
        if holds >= 2:
            bound = load_lower_bound(pairs, holds)
            said = f"lower bound on loads {bound}"
        else:
            bound = turn_lower_bound(scheduler.turns)
            said = f"lower bound on loads {bound} (from the turns played)"
        print(f"server holds {holds} model(s): {said}")
        print(f"  learned: {scheduler.learned}")
        for name, m in measured.items():
            print(
                f"  {name:<14} wall {m.wall:7.2f} s ({m.wall / scheduler.wall:4.2f}x)  loads "
                f"{m.loads:3d} ({m.loads / bound:4.2f}x the bound, {m.loads - bound:+d})  "
                f"slot utilisation {m.used:6.1%}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--games", type=int, default=2, help="games per pairing and seat order")
    parser.add_argument(
        "--holds", type=int, nargs="+", default=[1, 2, 3], help="models the server holds"
    )
    parser.add_argument("--load-delay", type=float, default=0.5, help="seconds per load")
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--token-delay", type=float, default=0.02)
    configure(fmt="console")
    asyncio.run(main(parser.parse_args()))
