"""Tournaments of phased debates against the fake ollama server: phases follow the
entrants into their seats, and the moderator is the scenario's, never an entrant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.tournament.games import all_games, game_motion, game_scenario, models
from runner.tournament.play import play
from runner.tournament.spec import load_tournament
from runner.transcript import read_transcript
from tests.fakes.ollama_server import FakeOllama
from tests.runner.tournament.test_play import LOAD_S, results, settings

DEBATE = """\
name: duel
agents:
  - {name: first, model: placeholder}
  - {name: second, model: placeholder}
moderator: {name: Chair, model: m9}
motions: [tea beats coffee, cats beat dogs, rain beats sun]
sides: {proposition: first, opposition: second}
phases:
  - {name: Openings, speakers: [proposition, opposition], budget: {tokens: 8}}
  - {name: Closing, speakers: [second, first], script: {first: "I rest."}}
seed: 3
"""

CUP = """\
name: cup
scenario: duel.yaml
entrants: [m1, m2]
games: 2
seed: 5
"""


JURY = "jury: {judges: [m9, m1], vote: [before, after]}\n"


def write(folder: Path, extra: str = "") -> Path:
    """The cup and its debate (``extra``: more of the scenario, e.g. a jury)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "duel.yaml").write_text(DEBATE + extra, encoding="utf-8")
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
    assert len(lines) == 4 and all(r["status"] == "success" for r in lines)
    for r in lines:
        transcript = read_transcript(out / r["transcript"])
        assert transcript.run is not None and transcript.run.moderator is not None
        chair = [turn for turn in transcript.turns if turn.role == "moderator"]
        assert [turn.model for turn in chair] == ["m9", "m9"] and not chair[0].scripted
        debaters = [turn.speaker for turn in transcript.turns if turn.role != "moderator"]
        seats = list(r["seats"].values())
        assert debaters == [seats[0], seats[1], seats[1], seats[0]]
        assert [p.name for p in transcript.phases] == ["Openings", "Closing"]


def test_sides_swap_with_the_seats_and_both_orders_debate_the_same_motion(
    tmp_path: Path,
) -> None:
    t = load_tournament(write(tmp_path))
    games = all_games(t)
    by_number: dict[int, list[tuple[str, str | None, str | None]]] = {}
    for game in games:
        scenario = game_scenario(t, game)
        assert scenario.sides is not None
        assert (scenario.sides.proposition, scenario.sides.opposition) == game.seats
        by_number.setdefault(game.number, []).append(
            (scenario.sides.proposition, game_motion(t, game), game.pairing[0])
        )
    for played in by_number.values():
        (a, motion_a, _), (b, motion_b, _) = played
        assert {a, b} == {"m1", "m2"}  # each entrant proposes once
        assert motion_a == motion_b  # on the same motion


async def test_each_game_records_its_motion_and_its_sides(tmp_path: Path) -> None:
    t = load_tournament(write(tmp_path / "t"))
    out = tmp_path / "out"
    async with FakeOllama(["m1", "m2", "m9"]) as fake:
        await play(t, settings(out, fake.url))
    for r in results(out):
        run = read_transcript(out / r["transcript"]).run
        assert run is not None and run.motion in t.scenario.motions
        game = next(g for g in all_games(t) if g.id == r["game_id"])
        assert run.motion == game_motion(t, game)
        assert run.sides == {"proposition": game.seats[0], "opposition": game.seats[1]}


async def test_a_jury_decides_the_games_no_end_rule_decides(tmp_path: Path) -> None:
    t = load_tournament(write(tmp_path / "t", JURY))
    assert set(t.scenario_models()) == {"m1", "m9"}  # the judges' models come with it
    out = tmp_path / "out"
    async with FakeOllama(["m1", "m2", "m9"]) as fake:
        await play(t, settings(out, fake.url))
    for r in results(out):
        transcript = read_transcript(out / r["transcript"])
        assert len(transcript.votes) == 8  # two judges, two stages, two orders
        assert r["decided_by"] == "jury" and transcript.end is not None
        assert transcript.end.outcome.reason == "jury"
        assert r["winner"] == transcript.end.outcome.winner
        flagged = {v.judge: v.self_judged for v in transcript.votes}
        assert flagged == {"juror-1": False, "juror-2": True}  # m1 debates in every game


def result(winner: str | None, motion: str, proposition: str, opposition: str) -> Any:
    from runner.tournament.ledger import ResultRecord

    return ResultRecord(
        game_id=f"g{winner}{motion}{proposition}", tournament_hash="h", pairing=["a", "b"],
        seats={"first": proposition, "second": opposition}, seed=1, status="success",
        winner=winner, draw=winner is None, decided_by="jury", transcript="t.jsonl",
        motion=motion, sides={"proposition": proposition, "opposition": opposition},
    )  # fmt: skip


def test_the_side_advantage_is_each_sides_win_rate_with_a_wilson_interval() -> None:
    from scipy import stats

    from runner.tournament.sides import per_motion, side_advantage

    results = [
        result("a", "tea", "a", "b"), result("b", "tea", "b", "a"),
        result("a", "cats", "a", "b"), result(None, "cats", "b", "a"),
        result("b", "tea", "a", "b"),
    ]  # fmt: skip
    sides = side_advantage(results)
    assert sides is not None and (sides["games"], sides["draws"]) == (5, 1)
    wilson = stats.binomtest(3, 5).proportion_ci(0.95, method="wilson")
    assert sides["proposition"] == {
        "wins": 3, "win_rate": 0.6,
        "ci_low": round(wilson.low, 3), "ci_high": round(wilson.high, 3),
    }  # fmt: skip
    assert sides["opposition"]["wins"] == 1 and sides["opposition"]["ci_low"] < 0.2
    assert per_motion(results) == [
        {"motion": "tea", "games": 3, "proposition": 2, "opposition": 1, "draws": 0},
        {"motion": "cats", "games": 2, "proposition": 1, "opposition": 0, "draws": 1},
    ]


async def test_the_leaderboard_reports_sides_and_motions_from_the_cli(tmp_path: Path) -> None:
    import json

    from tests.cli import sparring

    t = load_tournament(write(tmp_path / "t"))
    out = tmp_path / "out"
    async with FakeOllama(["m1", "m2", "m9"]) as fake:
        await play(t, settings(out, fake.url))
    shown = sparring("leaderboard", out)
    assert shown.returncode == 0, shown.stderr
    assert "sides: of 4 games, proposition won" in shown.stdout and "by motion" in shown.stdout
    data = json.loads(sparring("leaderboard", out, "--format", "json").stdout)
    assert data["side_advantage"]["games"] == 4
    assert sum(row["games"] for row in data["motions"]) == 4
    assert {row["motion"] for row in data["motions"]} <= set(t.scenario.motions)


@pytest.mark.parametrize("holds", [1, 3])
async def test_a_debate_with_a_chair_and_a_jury_learns_what_the_server_holds(
    holds: int, tmp_path: Path
) -> None:
    t = load_tournament(write(tmp_path / "t", JURY))
    out = tmp_path / "out"
    async with FakeOllama(["m1", "m2", "m9"], max_loaded=holds, load_delay=LOAD_S) as fake:
        outcome = await play(t, settings(out, fake.url))
        residency = fake.residency
    [server] = outcome.servers
    # A game needs three models (two debaters, the chair and a judge on m9): they are
    # loaded together first, and the server's evictions, or none, tell what it holds.
    assert (server.holds or server.at_least) == holds
    played = results(out)
    assert len(played) == len(all_games(t)) and {r["decided_by"] for r in played} == {"jury"}
    assert {r["alternates"] for r in played} == {False}  # the chair speaks between turns
    loads = sum(residency.loads.values())
    if holds == 3:
        assert loads == 3  # each model once
    else:
        # The chair's, debaters' and judges' turns go a model at a time: each load serves
        # the requests of every game then waiting for its model.
        transcripts = [read_transcript(out / r["transcript"]) for r in played]
        requests = sum(len(x.votes) + sum(not u.scripted for u in x.turns) for x in transcripts)
        assert loads * 2 <= requests, (loads, requests)
