"""The moderator: announces each phase (verbatim, or in its model's words), and never
counts as a debater: not for end rules, turn limits, winners or tournament seats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.backends.scripted import ScriptedBackend
from agents.errors import ConfigError
from runner.scenario.schema import scenario_from_data
from runner.transcript import read_transcript
from tests.runner.play.test_phases import DEBATE, play

CHAIRED: dict[str, Any] = {
    **DEBATE,
    "moderator": {
        "name": "Chair",
        "announce": "{phase}: {speakers}. {instruction}",
        "closing": "The debate on {topic} is closed.",
    },
    "end": [{"phrase": "I concede", "outcome": "speaker_loses"}],
}


async def test_a_scripted_moderator_announces_each_phase_and_closes(tmp_path: Path) -> None:
    backend = ScriptedBackend(fallback=lambda request: "fine")
    result = await play(tmp_path, CHAIRED, backend)
    transcript = read_transcript(result.path)
    chair = [(t.index, t.phase, t.content) for t in transcript.turns if t.role == "moderator"]
    assert chair == [
        (0, 0, "Openings: Max and Ada. Open the tea debate."),
        (3, 1, "Questions: Ada and Max."),
        (8, 2, "Closing: Ada and Max."),
        (11, 2, "The debate on tea is closed."),
    ]
    assert all(t.scripted for t in transcript.turns if t.role == "moderator")
    # The debaters' eight turns are the debate's: the chair's four lines are not counted.
    assert result.outcome.reason == "phases" and len(transcript.turns) == 12
    assert transcript.run is not None and transcript.run.moderator is not None
    assert transcript.run.moderator.name == "Chair" and transcript.run.moderator.model == ""
    assert [a.name for a in transcript.run.agents] == ["Ada", "Max"]
    assert [p.first_turn for p in transcript.phases] == [0, 3, 8]


async def test_debaters_hear_the_moderator_by_name(tmp_path: Path) -> None:
    backend = ScriptedBackend(fallback=lambda request: "fine")
    await play(tmp_path, CHAIRED, backend)
    first = backend.requests[0].messages  # Max, after the chair's announcement
    assert first[-1] == {
        "role": "user",
        "content": "Chair: Openings: Max and Ada. Open the tea debate.",
    }
    second = backend.requests[1].messages  # Ada hears the chair and Max, each named
    assert second[-1]["content"].endswith("Max: fine")


async def test_the_moderator_saying_an_end_phrase_ends_nothing(tmp_path: Path) -> None:
    data = {**CHAIRED, "moderator": {**CHAIRED["moderator"], "announce": "I concede {phase}."}}
    backend = ScriptedBackend(fallback=lambda request: "fine")
    result = await play(tmp_path, data, backend)
    assert result.outcome.reason == "phases" and result.outcome.loser is None


async def test_a_model_backed_moderator_says_the_announcement_in_its_words(
    tmp_path: Path,
) -> None:
    data = {**CHAIRED, "moderator": {**CHAIRED["moderator"], "model": "mc", "persona": "A chair."}}
    backend = ScriptedBackend({"mc": ["Welcome, all."]}, fallback=lambda request: "fine")
    result = await play(tmp_path, data, backend)
    turns = read_transcript(result.path).turns
    assert (turns[0].role, turns[0].content, turns[0].scripted) == (
        "moderator",
        "Welcome, all.",
        False,
    )
    asked = backend.requests[0]
    assert asked.model == "mc" and asked.config.num_predict == 80
    assert asked.messages[0]["content"].startswith("A chair.\n\nYou chair this debate.")
    assert asked.messages[0]["content"].endswith("Openings: Max and Ada. Open the tea debate.")


async def test_the_debaters_alone_decide_winners(tmp_path: Path) -> None:
    backend = ScriptedBackend({"mb": ["I concede"]}, fallback=lambda request: "fine")
    result = await play(tmp_path, CHAIRED, backend)
    assert (result.outcome.reason, result.outcome.loser, result.outcome.winner) == (
        "end_rule", "Max", "Ada",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"phases": []}, "moderator: a moderator announces phases: add phases"),
        (
            {"moderator": {"name": "Ada"}},
            "moderator.name: 'Ada' is an agent; the moderator needs a name of its own",
        ),
        (
            {"moderator": {"announce": "{phase} {nope}"}},
            "moderator.announce: undefined placeholder {nope}",
        ),
    ],
    ids=["no-phases", "name", "placeholder"],
)
def test_a_bad_moderator_is_one_line(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        scenario_from_data({**CHAIRED, **change})
    (problem,) = info.value.problems
    assert problem.startswith(f"<scenario>: {expected}")


def test_a_flat_scenario_has_no_moderator_in_its_hash() -> None:
    scenario = scenario_from_data(DEBATE)
    assert "moderator" not in scenario.content()
    assert scenario.hash != scenario_from_data(CHAIRED).hash


async def test_the_moderators_lines_are_no_agents_turns_in_the_analysis(tmp_path: Path) -> None:
    from runner.analysis.frames import load_frames

    backend = ScriptedBackend(fallback=lambda request: "fine")
    result = await play(tmp_path, CHAIRED, backend)
    turns = load_frames([result.path]).turns
    assert set(turns["speaker"]) == {"Ada", "Max"} and len(turns) == 8
    assert turns["phase"].tolist() == [0, 0, 1, 1, 1, 1, 2, 2]
