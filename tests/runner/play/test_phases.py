"""Phases: stages played in order, each with its speakers, turns, instruction and budget,
recorded in the transcript and read back; a scenario without phases plays as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.backends.scripted import ScriptedBackend
from agents.errors import ConfigError
from runner.model.generate import RetryPolicy
from runner.model.pool import BackendPool
from runner.play.conversation import Conversation
from runner.run.plan import RunPlan
from runner.scenario.schema import load_scenario, scenario_from_data
from runner.settings import RunSettings
from runner.transcript import read_transcript

DEBATE: dict[str, Any] = {
    "name": "phased",
    "agents": [
        {"name": "Ada", "model": "ma", "persona": "You are Ada."},
        {"name": "Max", "model": "mb", "persona": "You are Max."},
    ],
    "seed": 3,
    "phases": [
        {
            "name": "Openings",
            "speakers": ["Max", "Ada"],
            "instruction": "Open the {topic} debate.",
            "budget": {"tokens": 4, "words": 3},
        },
        {"name": "Questions", "speakers": ["Ada", "Max"], "turns": 2},
        {
            "name": "Closing",
            "speakers": ["Ada", "Max"],
            "script": {"Ada": "I rest my case on {topic}."},
        },
    ],
    "vars": {"topic": "tea"},
}


async def play(tmp_path: Path, data: dict[str, Any], backend: ScriptedBackend) -> Any:
    run = RunPlan([scenario_from_data(data)])
    settings = RunSettings(out_dir=tmp_path, retry=RetryPolicy(attempts=1, base=0.001))
    await run.bind(BackendPool.fixed(backend, settings))
    return await Conversation(next(iter(run)), settings, run_id="r").run()


async def test_phases_play_in_order_with_their_speakers_turns_and_lines(tmp_path: Path) -> None:
    backend = ScriptedBackend(fallback=lambda request: "one two three four five six")
    result = await play(tmp_path, DEBATE, backend)
    transcript = read_transcript(result.path)
    speakers = [(t.phase, t.speaker) for t in transcript.turns]
    assert speakers == [
        (0, "Max"), (0, "Ada"),
        (1, "Ada"), (1, "Max"), (1, "Ada"), (1, "Max"),
        (2, "Ada"), (2, "Max"),
    ]  # fmt: skip
    assert result.outcome.reason == "phases" and result.status == "success"
    closing = transcript.turns[6]
    assert closing.scripted and closing.content == "I rest my case on tea."
    assert not transcript.turns[7].scripted
    # Seven turns planned by the phases: the turn limit is theirs, not the default 20.
    assert transcript.run is not None and transcript.run.max_turns == 8


async def test_phase_records_are_written_before_their_turns_and_read_back(tmp_path: Path) -> None:
    backend = ScriptedBackend(fallback=lambda request: "fine")
    result = await play(tmp_path, DEBATE, backend)
    transcript = read_transcript(result.path)
    phases = [(p.index, p.name, p.first_turn, p.speakers) for p in transcript.phases]
    assert phases == [
        (0, "Openings", 0, ["Max", "Ada"]),
        (1, "Questions", 2, ["Ada", "Max"]),
        (2, "Closing", 6, ["Ada", "Max"]),
    ]
    assert transcript.phases[0].instruction == "Open the tea debate."
    assert transcript.phases[0].budget == {"tokens": 4, "words": 3}
    kinds = [json.loads(line)["type"] for line in result.path.read_text().splitlines()]
    assert kinds[:4] == ["run", "phase", "turn", "turn"]


async def test_the_instruction_closes_the_system_prompt_only_in_its_phase(tmp_path: Path) -> None:
    backend = ScriptedBackend(fallback=lambda request: "fine")
    await play(tmp_path, DEBATE, backend)
    systems = [r.messages[0]["content"] for r in backend.requests]
    assert systems[0] == "You are Max.\n\nOpen the tea debate."
    assert systems[1] == "You are Ada.\n\nOpen the tea debate."
    assert systems[2] == "You are Ada."  # the next phase has no instruction


async def test_a_token_budget_is_the_engines_limit_and_a_word_overrun_is_recorded(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend(fallback=lambda request: "one two three four five six")
    result = await play(tmp_path, DEBATE, backend)
    assert [r.config.num_predict for r in backend.requests[:3]] == [4, 4, None]
    opening, question = read_transcript(result.path).turns[0:3:2]
    # Cut by the engine at four tokens: both budgets reached, the text kept as it came.
    assert opening.content == "one two three four" and opening.done_reason == "length"
    assert opening.words == 4 and opening.overrun == ["words", "tokens"]
    assert opening.budget == {"tokens": 4, "words": 3}
    assert question.budget is None and question.overrun == [] and question.words is None


async def test_a_word_overrun_keeps_the_whole_speech(tmp_path: Path) -> None:
    data = {**DEBATE, "phases": [{"name": "Only", "speakers": ["Ada"], "budget": {"words": 2}}]}
    backend = ScriptedBackend(fallback=lambda request: "far too many words here")
    result = await play(tmp_path, data, backend)
    (turn,) = read_transcript(result.path).turns
    assert turn.content == "far too many words here"
    assert (turn.words, turn.overrun) == (5, ["words"])
    assert backend.requests[0].config.num_predict is None


async def test_an_end_rule_still_ends_a_phased_debate(tmp_path: Path) -> None:
    data = {**DEBATE, "end": [{"phrase": "I concede", "outcome": "speaker_loses"}]}
    backend = ScriptedBackend({"mb": ["I concede"]}, fallback=lambda request: "no")
    result = await play(tmp_path, data, backend)
    assert (result.outcome.reason, result.outcome.loser, result.turns) == ("end_rule", "Max", 1)


def test_a_scenario_without_phases_keeps_its_hash_and_loop() -> None:
    flat = {k: v for k, v in DEBATE.items() if k != "phases"}
    scenario = scenario_from_data(flat)
    assert "phases" not in scenario.content()
    assert scenario.max_turns == 20 and scenario.phases == ()
    assert scenario.hash != scenario_from_data(DEBATE).hash


PHASED = """\
name: t
agents:
  - {name: A, model: m}
  - {name: B, model: m}
phases:
  - name: Openings
    speakers: [A, C]
    budget: {tokens: 0}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PHASED, "s.yaml:8:22: phases[0].budget.tokens: a budget is a positive number; got 0"),
        (
            PHASED.replace("tokens: 0", "words: -3"),
            "s.yaml:8:21: phases[0].budget.words: a budget is a positive number; got -3",
        ),
        (
            PHASED.replace("{tokens: 0}", "{tokens: 5}"),
            "s.yaml:7:19: phases[0].speakers[1]: unknown speaker 'C'; agents: A, B",
        ),
        (
            PHASED.replace("{tokens: 0}", "{}").replace("A, C", "A"),
            "s.yaml:8:13: phases[0].budget: a budget sets tokens, words or both",
        ),
        (
            PHASED.replace("budget: {tokens: 0}", "script: {B: hi}").replace("A, C", "A"),
            "s.yaml:8:17: phases[0].script.B: 'B' does not speak in this phase; its speakers: A",
        ),
        (
            PHASED.replace("{tokens: 0}", "{tokens: 5}").replace("A, C", "A") + "order: random\n",
            "s.yaml:9:8: order: phases set who speaks when: remove order, or list speakers "
            "per phase",
        ),
    ],
    ids=["zero-tokens", "negative-words", "unknown-speaker", "empty-budget", "script", "order"],
)
def test_bad_phases_are_one_located_line_each(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert [p.replace(str(tmp_path) + "/", "") for p in info.value.problems] == [expected]


async def test_show_prints_each_phase_before_its_turns(tmp_path: Path) -> None:
    from rich.console import Console

    from runner.console.transcript import show_transcript

    backend = ScriptedBackend(fallback=lambda request: "one two three four five six")
    result = await play(tmp_path, DEBATE, backend)
    out = Console(record=True, width=200)
    show_transcript(out, read_transcript(result.path))
    text = out.export_text()
    lines = text.splitlines()
    headings = [i for i, line in enumerate(lines) if line.startswith("── ")]
    assert [lines[i].split("  ")[0] for i in headings] == [
        "── Openings", "── Questions", "── Closing",
    ]  # fmt: skip
    assert lines[headings[0]].endswith("Max, Ada; 1 turn each; at most 4 tokens, 3 words a speech")
    assert lines[headings[0] + 1].strip() == "Open the tea debate."
    first_turn = lines[headings[0] + 2]
    assert (
        "Max" in first_turn and "4/3 words" in first_turn and "over its word budget" in first_turn
    )
    assert "every phase played" in text
