"""Tournament files: validated like scenarios, one located line per problem."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from agents.errors import ConfigError
from runner.tournament.games import all_games, game_scenario, pairings
from runner.tournament.spec import json_schema, load_tournament
from tests.runner.tournament.helpers import write_tournament

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "scenarios" / "tournaments").glob("*.yaml"))


TOUGH = (
    "{name: tough, model: m2, persona: '{seat_persona} Never give in.', "
    "options: {temperature: 0.3}}"
)


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_tournament(path)
    return info.value.problems


def test_a_valid_file_loads_with_shorthand_and_full_entrants(tmp_path: Path) -> None:
    path = write_tournament(
        tmp_path,
        [
            "m1",
            TOUGH,
        ],
    )
    t = load_tournament(path)
    assert [(e.name, e.model) for e in t.entrants] == [("m1", "m1"), ("tough", "m2")]
    assert t.seats == ("opener", "replier")
    assert t.hash.startswith("sha256:")


@pytest.mark.parametrize(
    ("entrants", "extra", "where", "message"),
    [
        (["m1", "{name: m1, model: m2}"], "", ":5:", "duplicate entrant name 'm1'"),
        (["m1", "{name: x, modle: m2}"], "", "entrants[1].modle", "did you mean 'model'"),
        (["m1"], "", "entrants", "at least two entrants"),
        (["m1", "m2"], "format: gauntlet\n", "challengers", "a gauntlet needs challengers"),
        (
            ["m1", "m2"],
            "format: gauntlet\nchallengers: [m3]\n",
            "challengers[0]",
            "no entrant 'm3'",
        ),
        (["m1", "{name: x, model: m2, persona: '{topic}'}"], "", "entrants[1].persona", "{topic}"),
        (["m1", "m2"], "swap_seats: maybe\n", "swap_seats", "valid boolean"),
        (["m1", "m2"], "judge: {modle: j}\n", "judge.modle", "unknown key"),
    ],
)
def test_problems_are_located(
    entrants: list[str], extra: str, where: str, message: str, tmp_path: Path
) -> None:
    path = write_tournament(tmp_path, entrants, extra=extra)
    found = problems(path)
    assert all(p.startswith(f"{path}:") for p in found)
    assert any(where in p and message in p for p in found), found


def test_a_scenario_with_errors_reports_them_in_its_own_file(tmp_path: Path) -> None:
    path = write_tournament(tmp_path)
    scenario = tmp_path / "duel.yaml"
    scenario.write_text(scenario.read_text().replace("max_turns", "max_turn"), encoding="utf-8")
    [problem] = problems(path)
    assert problem.startswith(f"{scenario.resolve()}:") and "max_turn" in problem


def test_only_two_seat_scenarios(tmp_path: Path) -> None:
    path = write_tournament(tmp_path)
    path.write_text(path.read_text().replace("duel.yaml", str(ROOT / "scenarios" / "panel.yaml")))
    [problem] = problems(path)
    assert "two-seat scenario" in problem and "has 3" in problem


def test_pairings_and_games(tmp_path: Path) -> None:
    t = load_tournament(write_tournament(tmp_path, ["a", "b", "c"], games=2))
    assert pairings(t) == [("a", "b"), ("a", "c"), ("b", "c")]
    games = all_games(t)
    assert len(games) == 3 * 2 * 2  # pairings x seat orders x games
    assert len({g.id for g in games}) == len(games) == len({g.seed for g in games})
    assert {g.seats for g in games if g.pairing == ("a", "b")} == {("a", "b"), ("b", "a")}
    one_way = load_tournament(write_tournament(tmp_path / "x", ["a", "b", "c"], swap=False))
    assert len(all_games(one_way)) == 3
    gauntlet = load_tournament(
        write_tournament(
            tmp_path / "g", ["a", "b", "c", "d"], extra="format: gauntlet\nchallengers: [d]\n"
        )
    )
    assert pairings(gauntlet) == [("a", "d"), ("b", "d"), ("c", "d")]


def test_game_ids_are_stable_and_survive_unrelated_edits(tmp_path: Path) -> None:
    before = {
        (*g.seats, g.number): g.id
        for g in all_games(load_tournament(write_tournament(tmp_path, ["a", "b", "c"])))
    }
    again = {
        (*g.seats, g.number): g.id
        for g in all_games(load_tournament(write_tournament(tmp_path, ["a", "b", "c"])))
    }
    assert again == before
    more = {
        (*g.seats, g.number): g.id
        for g in all_games(
            load_tournament(write_tournament(tmp_path, ["a", "b", "c", "d"], games=2))
        )
    }
    assert all(more[key] == gid for key, gid in before.items())  # the old games keep their ids
    reseeded = write_tournament(tmp_path, ["a", "b", "c"])
    reseeded.write_text(reseeded.read_text().replace("seed: 5", "seed: 6"))
    assert not set(g.id for g in all_games(load_tournament(reseeded))) & set(before.values())


def test_a_game_fills_the_seats_with_its_entrants(tmp_path: Path) -> None:
    path = write_tournament(
        tmp_path,
        [
            "m1",
            TOUGH,
        ],
    )
    t = load_tournament(path)
    game = next(g for g in all_games(t) if g.seats == ("tough", "m1"))
    s = game_scenario(t, game)
    opener, replier = s.agents
    assert (opener.name, opener.model) == ("tough", "m2")
    assert opener.persona == "You open the argument. Never give in."
    assert opener.opening == "Let us argue about tea."  # the seat's opening stays
    assert opener.options.temperature == 0.3
    assert (replier.name, replier.model, replier.persona) == ("m1", "m1", "You answer.")
    assert s.end[0].speakers == ["tough", "m1"]  # rules follow the seats
    assert s.seed == game.seed and s.repeat == 1
    assert s.hash == t.scenario.hash


def test_the_schema_file_is_generated_and_the_examples_follow_it() -> None:
    shipped = json.loads(
        (ROOT / "scenarios" / "tournament.schema.json").read_text(encoding="utf-8")
    )
    assert shipped == json_schema()
    for path in SHIPPED:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# yaml-language-server: $schema=../tournament.schema.json")
        jsonschema.validate(yaml.safe_load(text), shipped)
        load_tournament(path)  # and they load, scenario included
    assert len(SHIPPED) >= 2


def test_a_missing_scenario_file_is_said_where_the_tournament_names_it(tmp_path: Path) -> None:
    path = write_tournament(tmp_path, ["m1", "m2"])
    (tmp_path / "duel.yaml").unlink()
    [line] = problems(path)
    assert line.startswith(f"{path}:2:") and "scenario: no such file" in line


def test_a_bad_shorthand_entrant_is_said_in_its_fields_terms(tmp_path: Path) -> None:
    # "- m1" is read as {name: m1, model: m1}: its faults are the name's and the model's.
    path = write_tournament(tmp_path, ['" padded"', "m2"])
    [line] = problems(path)
    assert "entrants[0].name: a name is a one-line label" in line


def test_a_bad_options_value_names_what_it_should_be(tmp_path: Path) -> None:
    path = write_tournament(tmp_path, ["m1", "{name: x, model: m2, options: 5}"])
    [line] = problems(path)
    assert line.endswith("entrants[1].options: expected a mapping of options; got 5")
