"""A tournament folder read back: games lost to errors counted per entrant, old ledgers
still read."""

from __future__ import annotations

import json
from pathlib import Path

from runner.model.generate import RetryPolicy
from runner.settings import RunSettings
from runner.tournament.ledger import RESULTS
from runner.tournament.play import PlaySettings, play
from runner.tournament.spec import load_tournament
from runner.tournament.standings import folder_leaderboard
from tests.fakes.ollama_server import Error, FakeOllama
from tests.runner.tournament.helpers import write_tournament

MODELS = ["m1", "m2", "m3"]


def settings(out: Path, url: str) -> PlaySettings:
    run = RunSettings(
        out_dir=out, backend="ollama", hosts=(url,), retry=RetryPolicy(attempts=2, base=0.01)
    )
    return PlaySettings(out=out, run=run)


async def test_games_lost_to_errors_are_counted_per_entrant(tmp_path: Path) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS, games=1))
    out = tmp_path / "out"
    async with FakeOllama(MODELS) as fake:
        # m2's server refuses every request: its four games end in error, on its model.
        fake.script("m2", *[Error(400, "the prompt is not allowed")] * 20)
        await play(t, settings(out, fake.url))
    board = folder_leaderboard(out, rounds=20)
    by_name = {s.name: s for s in board.entrants}
    assert (by_name["m2"].errors, by_name["m2"].own_errors, by_name["m2"].refusals) == (4, 4, 4)
    for other in ("m1", "m3"):
        assert (by_name[other].errors, by_name[other].own_errors) == (2, 0)
        assert by_name[other].games == 2  # their games against each other still count
    assert by_name["m2"].games == 0 and board.excluded == {"error": 4}
    rows = {row["name"]: row for row in board.to_dict()["entrants"]}
    assert (rows["m2"]["errors"], rows["m2"]["refusals"], rows["m1"]["own_errors"]) == (4, 4, 0)

    # A ledger written before errors named their kind and model: counted, cause unknown.
    path = out / RESULTS
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        line.pop("error_kind"), line.pop("error_model")
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    old = {s.name: s for s in folder_leaderboard(out, rounds=20).entrants}
    assert (old["m2"].errors, old["m2"].own_errors, old["m2"].refusals) == (4, 0, 0)
