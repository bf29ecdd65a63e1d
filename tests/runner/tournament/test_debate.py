"""Tournaments of phased debates against the fake ollama server: phases follow the
entrants into their seats, and the moderator is the scenario's, never an entrant."""

from __future__ import annotations

from pathlib import Path

from runner.tournament.games import all_games, game_scenario, models
from runner.tournament.play import play
from runner.tournament.spec import load_tournament
from runner.transcript import read_transcript
from tests.fakes.ollama_server import FakeOllama
from tests.runner.tournament.test_play import results, settings

DEBATE = """\
name: duel
agents:
  - {name: first, model: placeholder}
  - {name: second, model: placeholder}
moderator: {name: Chair, model: m9}
phases:
  - {name: Openings, speakers: [first, second], budget: {tokens: 8}}
  - {name: Closing, speakers: [second, first], script: {first: "I rest."}}
seed: 3
"""

CUP = """\
name: cup
scenario: duel.yaml
entrants: [m1, m2]
seed: 5
"""


def write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "duel.yaml").write_text(DEBATE, encoding="utf-8")
    (folder / "cup.yaml").write_text(CUP, encoding="utf-8")
    return folder / "cup.yaml"


def test_phases_name_the_entrants_in_their_seats(tmp_path: Path) -> None:
    t = load_tournament(write(tmp_path))
    game = all_games(t)[1]
    scenario = game_scenario(t, game)
    assert [p.speakers for p in scenario.phases] == [list(game.seats), list(game.seats[::-1])]
    assert scenario.phases[1].script == {game.seats[0]: "I rest."}
    assert models(t, game) == {"m1", "m2", "m9"}  # the moderator's model is loaded too


async def test_a_phased_tournament_plays_with_the_scenarios_moderator(tmp_path: Path) -> None:
    t = load_tournament(write(tmp_path / "t"))
    out = tmp_path / "out"
    async with FakeOllama(["m1", "m2", "m9"]) as fake:
        await play(t, settings(out, fake.url))
    lines = results(out)
    assert len(lines) == 2 and all(r["status"] == "success" for r in lines)
    for r in lines:
        transcript = read_transcript(out / r["transcript"])
        assert transcript.run is not None and transcript.run.moderator is not None
        chair = [turn for turn in transcript.turns if turn.role == "moderator"]
        assert [turn.model for turn in chair] == ["m9", "m9"] and not chair[0].scripted
        debaters = [turn.speaker for turn in transcript.turns if turn.role != "moderator"]
        seats = list(r["seats"].values())
        assert debaters == [seats[0], seats[1], seats[1], seats[0]]
        assert [p.name for p in transcript.phases] == ["Openings", "Closing"]
