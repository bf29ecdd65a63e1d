"""The report grouped by a debate's phase: each phase's speeches, the moderator left out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.backends.base import ChatRequest
from runner.analysis.frames import load_frames
from runner.analysis.metrics import NO_PHASE, OUTCOME_METRICS, analyse
from tests.cli import sparring
from tests.runner.analysis.debates import play_scripted
from tests.runner.analysis.transcripts import Agent, Write

# Named so that name order and playing order differ: the report lists phases as played.
DEBATE: dict[str, Any] = {
    "name": "phased",
    "motions": ["tea beats coffee"],
    "agents": [
        {"name": "Ada", "model": "ma", "persona": "You are the {side}."},
        {"name": "Max", "model": "mb", "persona": "You are the {side}."},
    ],
    "sides": {"proposition": "Ada", "opposition": "Max"},
    "moderator": {"name": "Chair", "announce": "{phase}: many words from the chair here now."},
    "phases": [
        {
            "name": "Zeta openings",
            "speakers": ["proposition", "opposition"],
            "instruction": "OPEN now.",
        },
        {
            "name": "Alpha closings",
            "speakers": ["opposition", "proposition"],
            "turns": 2,
            "instruction": "CLOSE now.",
        },
    ],
    "seed": 3,
}


def reply(request: ChatRequest) -> str:
    # Openings say four words, closings two: whichever phase's cue came last is this one's.
    text = " ".join(str(m["content"]) for m in request.messages)
    return "one two three four" if text.rfind("OPEN") > text.rfind("CLOSE") else "one two"


async def play(folder: Path, data: dict[str, Any] = DEBATE) -> None:
    await play_scripted(folder, data, reply)


async def test_turn_rows_carry_their_phase_name_and_no_moderator_line(tmp_path: Path) -> None:
    await play(tmp_path)
    turns = load_frames([tmp_path]).turns
    assert turns["speaker"].tolist() == ["Ada", "Max", "Max", "Ada", "Max", "Ada"]
    assert turns["phase_name"].tolist() == ["Zeta openings"] * 2 + ["Alpha closings"] * 4
    assert turns["phase"].tolist() == [0, 0, 1, 1, 1, 1]


async def test_metrics_grouped_by_phase_split_each_speakers_turns(tmp_path: Path) -> None:
    await play(tmp_path)
    analysis = analyse(load_frames([tmp_path]), by="phase", resamples=200)
    groups = analysis.groups
    assert [g.group for g in groups] == ["Zeta openings", "Alpha closings"]  # as played
    openings, closings = groups
    assert openings.key == {"phase": "Zeta openings"}
    assert (openings.turns, closings.turns) == (2, 4)  # the chair's announcements are no turns
    assert openings.metrics["words_per_turn"].value == 4.0
    assert closings.metrics["words_per_turn"].value == 2.0
    for name in OUTCOME_METRICS:  # a phase neither wins nor loses
        assert openings.metrics[name].value is None
    by_agent = {g.group: g for g in analyse(load_frames([tmp_path]), by="agent").groups}
    assert by_agent["Ada"].metrics["words_per_turn"].value == (4 + 2 + 2) / 3


def test_turns_outside_any_phase_are_grouped_as_no_phase(write: Write, folder: Path) -> None:
    a, b = Agent("A", "m1"), Agent("B", "m2")
    write(agents=[a, b], turns=[("A", "one two three"), ("B", "one")])
    write(agents=[a, b], turns=[("A", "one"), ("B", "one two three four five")])
    groups = analyse(load_frames([folder]), by="phase", resamples=200).groups
    assert [g.group for g in groups] == [NO_PHASE]
    assert groups[0].turns == 4 and groups[0].conversations == 2
    assert groups[0].metrics["words_per_turn"].value == 2.5


async def test_a_debate_and_a_plain_conversation_put_no_phase_last(
    tmp_path: Path, write: Write, folder: Path
) -> None:
    await play(folder)
    write(agents=[Agent("A", "m1"), Agent("B", "m2")], turns=[("A", "x y z"), ("B", "x")])
    analysis = analyse(load_frames([folder]), by="phase", resamples=200)
    assert [g.group for g in analysis.groups] == ["Zeta openings", "Alpha closings", NO_PHASE]
    assert set(analysis.scenarios) == {"phased", "test"}
    assert [g.group for g in analysis.scenarios["test"]] == [NO_PHASE]


async def test_report_by_phase_from_the_cli(tmp_path: Path) -> None:
    await play(tmp_path / "t")
    result = sparring("report", tmp_path / "t", "--by", "phase", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["by"] == "phase"
    groups = {g["group"]: g for g in data["groups"]}
    assert list(groups) == ["Zeta openings", "Alpha closings"]
    assert groups["Alpha closings"]["phase"] == "Alpha closings"
    assert groups["Alpha closings"]["metrics"]["words_per_turn"]["value"] == 2.0
    html = tmp_path / "r.html"
    result = sparring("report", tmp_path / "t", "--by", "phase", "-o", html)
    assert result.returncode == 0, result.stderr
    assert "2 groups by phase" in result.stderr
    assert html.read_text("utf-8").count('"group":"Zeta openings"') >= 1
