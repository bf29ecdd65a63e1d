"""Scenario loading: valid files resolve; every kind of bad input is one positioned line."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from agents.errors import ConfigError
from runner.scenario.schema import json_schema, load_scenario, substitute

ROOT = Path(__file__).resolve().parents[3]

SCENARIOS = sorted((Path(__file__).parents[3] / "scenarios").glob("*.yaml"))

VALID = """\
name: t
vars: {topic: tea}
defaults:
  model: m1
  options: {temperature: 0.5, num_predict: 20}
agents:
  - name: A
    persona: "Argue about {topic}."
    opening: "Hello about {topic}, {{not a var}}"
    options: {temperature: 0.9, stop: "END"}
  - name: B
    model: m2
    max_turns: 3
end:
  - {phrase: "I lost", outcome: speaker_loses}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, text))
    return info.value.problems


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_every_shipped_scenario_is_valid(path: Path) -> None:
    scenario = load_scenario(path)
    assert len(scenario.agents) >= 2
    assert all(agent.model for agent in scenario.agents)


def test_shipped_scenarios_include_the_required_ones() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"i-lost", "quickstart", "debate", "panel", "self-debate"} <= names
    assert {"oxford", "policy-debate"} <= names  # the debate formats
    orders = {load_scenario(p).order for p in SCENARIOS}
    assert {"round_robin", "simultaneous"} <= orders


def test_i_lost_is_the_lessons_game() -> None:
    scenario = load_scenario(Path(__file__).parents[3] / "scenarios" / "i-lost.yaml")
    first, second = scenario.agents
    assert (first.model, second.model) == ("llama3.2:1b", "qwen:0.5b")
    assert first.opening == (
        "Now, let's have an argument with anything. Any topic OK but one sentence per one "
        "turn. If you or I tell 'I lost' then I or you win"
    )
    assert scenario.end[0].phrase == "I lost" and scenario.end[0].outcome == "speaker_loses"


def test_defaults_merge_and_vars_substitute(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, VALID))
    a, b = s.agents
    assert a.model == "m1" and b.model == "m2"
    assert a.options.set_fields() == {"temperature": 0.9, "num_predict": 20, "stop": ["END"]}
    assert b.options.set_fields() == {"temperature": 0.5, "num_predict": 20}
    assert a.persona == "Argue about tea."
    assert a.opening == "Hello about tea, {not a var}"
    assert b.max_turns == 3 and s.max_turns == 20 and s.order == "round_robin"
    assert s.hash.startswith("sha256:")


def test_the_hash_names_what_happens_not_how_often_or_with_which_seed(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    plain = load_scenario(path)
    more = load_scenario(path, seed=9, repeat=4)
    assert (more.seed, more.repeat) == (9, 4)
    assert more.hash == plain.hash  # more games of the same scenario
    other = load_scenario(path, vars={"topic": "coffee"})
    assert other.agents[0].persona == "Argue about coffee."
    assert other.hash != plain.hash  # a different conversation
    assert load_scenario(path, max_turns=5).hash != plain.hash
    copy = tmp_path / "elsewhere" / "copy.yaml"
    copy.parent.mkdir()
    copy.write_text(VALID, encoding="utf-8")
    assert load_scenario(copy).hash == plain.hash  # where the file lives does not matter


def test_substitution_never_evaluates() -> None:
    text, missing = substitute("{a} {a.__class__} {b}", {"a": "x"})
    assert text == "x {a.__class__} {b}"
    assert missing == ["b"]


def test_unknown_key_names_line_column_field_and_suggests(tmp_path: Path) -> None:
    text = VALID.replace("    max_turns: 3", "    max_turn: 3")
    [line] = problems(tmp_path, text)
    assert line.startswith(f"{tmp_path / 's.yaml'}:13:5: agents[1].max_turn: unknown key")
    assert "did you mean 'max_turns'" in line


def test_sampling_option_in_the_wrong_place_gets_a_hint(tmp_path: Path) -> None:
    text = VALID.replace("  model: m1\n", "  model: m1\n  temperature: 1\n")
    [line] = problems(tmp_path, text)
    assert ":5:3: defaults.temperature: unknown key" in line
    assert "defaults.options.temperature" in line


def test_wrong_type(tmp_path: Path) -> None:
    [line] = problems(tmp_path, VALID.replace("max_turns: 3", "max_turns: lots"))
    assert ":13:16: agents[1].max_turns:" in line and "'lots'" in line


def test_bad_option_value(tmp_path: Path) -> None:
    [line] = problems(tmp_path, VALID.replace("temperature: 0.9", "temperature: -1"))
    assert "agents[0].options.temperature" in line and ":10:" in line


@pytest.mark.parametrize(
    ("value", "got"),
    [("0", "0"), ("-1", "-1"), ('"some"', "'some'"), ("[1]", "[1]")],
)
def test_a_bad_history_is_one_line_naming_what_it_may_be(
    tmp_path: Path, value: str, got: str
) -> None:
    [line] = problems(tmp_path, VALID + f"history: {value}\n")
    expected = "'all' or a whole number" + (" from 1 up" if value in ("0", "-1") else "")
    assert line.endswith(f"s.yaml:16:10: history: expected {expected}; got {got}")


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("keep_alive: [1]", "agents[0].options.keep_alive: expected text or a number; got [1]"),
        ("temperature: .nan", "agents[0].options.temperature: must be a number, not NaN"),
    ],
)
def test_a_bad_option_is_one_line_in_the_files_terms(
    tmp_path: Path, option: str, expected: str
) -> None:
    [line] = problems(tmp_path, VALID.replace("temperature: 0.9", option))
    assert line.split(": ", 1)[1] == expected


def test_a_stop_that_is_neither_text_nor_a_list_is_one_line(tmp_path: Path) -> None:
    [line] = problems(tmp_path, VALID.replace('stop: "END"', "stop: 5"))
    assert line.endswith("agents[0].options.stop: expected text or a list of texts; got 5")


def test_a_var_of_no_allowed_kind_is_one_line(tmp_path: Path) -> None:
    [line] = problems(tmp_path, VALID.replace("vars: {topic: tea}", "vars: {topic: [tea]}"))
    assert line.endswith(":2:15: vars.topic: expected text, a number or true/false; got ['tea']")


def test_a_value_that_is_not_a_mapping_never_names_an_internal_class(tmp_path: Path) -> None:
    text = VALID.replace('options: {temperature: 0.9, stop: "END"}', "options: x")
    text = text.replace('{phrase: "I lost", outcome: speaker_loses}', "5")
    first, second = problems(tmp_path, text)
    assert first.endswith(":10:14: agents[0].options: expected a mapping of options; got 'x'")
    assert second.endswith(":15:5: end[0]: expected a mapping; got 5")


def test_an_inner_fault_of_a_union_branch_is_reported_alone(tmp_path: Path) -> None:
    text = VALID.replace("outcome: speaker_loses}", "outcome: speaker_loses, objects: [3]}")
    [line] = problems(tmp_path, text)
    assert "end[0].objects[0]: Input should be a valid string; got 3" in line


def test_a_long_value_is_quoted_short_and_a_long_list_of_problems_is_cut(
    tmp_path: Path,
) -> None:
    many = "[" + ", ".join(str(i) for i in range(2000)) + "]"
    [line] = problems(tmp_path, VALID.replace("vars: {topic: tea}", f"vars: {{topic: {many}}}"))
    assert line.endswith("vars.topic: expected text, a number or true/false; got [0, 1, 2, 3, ...]")
    lines = problems(tmp_path, VALID.replace('stop: "END"', f"stop: {many}"))
    assert len(lines) == 21 and lines[-1].endswith("s.yaml: 1980 more problems not shown")
    assert all(len(line) < 200 for line in lines)


def test_duplicate_agent_name(tmp_path: Path) -> None:
    [line] = problems(tmp_path, VALID.replace("name: B", "name: A"))
    assert ":11:11: agents[1].name: duplicate agent name 'A'" in line


def test_fewer_than_two_agents(tmp_path: Path) -> None:
    text = "name: t\nagents:\n  - {name: A, model: m}\n"
    [line] = problems(tmp_path, text)
    assert ":3:3: agents: a scenario needs at least two agents; got 1" in line


def test_unknown_order(tmp_path: Path) -> None:
    [line] = problems(tmp_path, VALID + "order: roundrobin\n")
    assert ":16:8: order: expected one of 'round_robin', 'random' or 'simultaneous'" in line


def test_malformed_regex(tmp_path: Path) -> None:
    text = VALID.replace(
        '{phrase: "I lost", outcome: speaker_loses}', "{regex: 'a(b', outcome: draw}"
    )
    [line] = problems(tmp_path, text)
    assert ":15:13: end[0].regex: malformed regex 'a(b'" in line


def test_rule_needs_exactly_one_matcher(tmp_path: Path) -> None:
    text = VALID.replace('{phrase: "I lost", outcome: speaker_loses}', "{outcome: draw}")
    [line] = problems(tmp_path, text)
    assert "end[0]: give exactly one of 'phrase' or 'regex'" in line


def test_undefined_placeholder(tmp_path: Path) -> None:
    [line] = problems(tmp_path, VALID.replace("Argue about {topic}.", "Argue {side}."))
    assert ":8:14: agents[0].persona: undefined placeholder {side} (vars defined: topic)" in line


def test_agent_without_model(tmp_path: Path) -> None:
    text = VALID.replace("  model: m1\n", "")
    [line] = problems(tmp_path, text)
    assert "agents[0]: no model" in line and ":6:5:" in line


def test_rule_speaker_must_exist(tmp_path: Path) -> None:
    text = VALID.replace("outcome: speaker_loses}", "outcome: speaker_loses, speakers: [C]}")
    [line] = problems(tmp_path, text)
    assert "end[0].speakers: unknown agent 'C'" in line


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    [line] = problems(tmp_path, "name: a\n" + VALID)
    assert ":2:1: name: duplicate key 'name'" in line


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    text = VALID.replace("name: t", "name: t\nordr: x").replace("max_turns: 3", "max_turns: 0")
    lines = problems(tmp_path, text)
    assert len(lines) == 2
    assert "ordr" in lines[0] and "max_turns" in lines[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("name: [unclosed\nagents: x\n", "s.yaml:2:7: not valid YAML"),
        ("- a\n- b\n", "s.yaml:1:1: (top level): expected a mapping"),
        ("just words", "expected a mapping"),
        ("name: x\nagents: !!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_not_a_scenario(tmp_path: Path, text: str, expected: str) -> None:
    [line] = problems(tmp_path, text)
    assert expected in line


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_scenario(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------- JSON Schema

SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_the_shipped_schema_file_is_the_generated_one() -> None:
    shipped = json.loads((ROOT / "scenarios" / "scenario.schema.json").read_text(encoding="utf-8"))
    regenerate = "sparring schema scenario > scenarios/scenario.schema.json"
    assert shipped == json_schema(), regenerate


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_shipped_scenarios_follow_the_schema_and_point_editors_at_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=scenario.schema.json"
    jsonschema.validate(yaml.safe_load(text), json_schema())


def test_the_schema_catches_what_the_loader_catches() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    good = {"name": "t", "agents": [{"name": "a", "model": "m"}, {"name": "b", "model": "m"}]}
    jsonschema.validate(good, schema)
    for bad in (
        {**good, "ordr": "random"},  # unknown key
        {**good, "max_turns": 0},  # out of range
        {**good, "agents": good["agents"][:1]},  # one agent
        {**good, "defaults": {"options": {"temprature": 1}}},  # unknown option
        {**good, "order": "alphabetical"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


# ---------------------------------------------------------------------------- overrides


def test_a_misspelt_var_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    with pytest.raises(ConfigError) as info:
        load_scenario(path, vars={"topik": "coffee"})
    [line] = info.value.problems
    assert "--var topik" in line and "did you mean 'topic'?" in line and str(path) in line


def test_a_var_only_used_as_a_placeholder_may_be_set(tmp_path: Path) -> None:
    text = VALID.replace("vars: {topic: tea}\n", "")  # {topic} is used, never defined
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="undefined placeholder"):
        load_scenario(path)
    assert load_scenario(path, vars={"topic": "tea"}).agents[0].persona == "Argue about tea."


def test_model_overrides_per_agent_or_for_all(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    plain = load_scenario(path)
    one = load_scenario(path, models={"B": "other:1b"})
    assert [a.model for a in one.agents] == [plain.agents[0].model, "other:1b"]
    assert one.overrides.recorded() == {"models": {"B": "other:1b"}}
    every = load_scenario(path, models={None: "x:1b", "A": "y:2b"})
    assert [a.model for a in every.agents] == ["y:2b", "x:1b"]  # an agent's own wins
    assert every.overrides.models == {"*": "x:1b", "A": "y:2b"}
    assert one.hash != plain.hash  # another matchup is another scenario
    with pytest.raises(ConfigError, match=r"no agent 'b'.*did you mean 'B'"):
        load_scenario(path, models={"b": "m"})


def test_the_hash_of_a_scenario_is_stable_across_versions() -> None:
    # Transcripts and tournament folders compare these hashes with ones written by earlier
    # versions: a new scenario field left unset must not change them.
    assert load_scenario(ROOT / "scenarios" / "i-lost.yaml").hash == (
        "sha256:929814af2b4714cf1a734b20a77ccce071e2558e3311d68a0a84f9a81de44cb5"
    )
    changed = load_scenario(
        ROOT / "scenarios" / "i-lost.yaml",
        models={None: "x:1b", "llama": "y"}, seed=3, repeat=2, max_turns=5,
    )  # fmt: skip
    assert changed.hash == "sha256:50f6236d652c53d6709ffb30b972936ff79e244f18c91da50b4ac475c8a97331"
    assert changed.overrides.recorded() == {
        "models": {"*": "x:1b", "llama": "y"}, "max_turns": 5, "repeat": 2, "seed": 3,
    }  # fmt: skip


def test_the_resolved_scenario_round_trips_through_its_snapshot() -> None:
    from runner.scenario.snapshot import snapshot_of

    scenario = load_scenario(ROOT / "scenarios" / "debate.yaml", seed=4)
    again = snapshot_of(json.loads(json.dumps(scenario.snapshot())), "here")
    assert again == scenario
    assert again.hashed().hash == scenario.hash
