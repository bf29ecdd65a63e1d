"""The report grouped by a debate's side: whoever argued it, the moderator left out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.backends.base import ChatRequest
from runner.analysis.frames import load_frames
from runner.analysis.metrics import analyse
from tests.cli import sparring
from tests.runner.analysis.debates import play_scripted

DEBATE: dict[str, Any] = {
    "name": "sided",
    "motions": ["tea beats coffee"],
    "agents": [
        {"name": "Ada", "model": "ma", "persona": "You are the {side}."},
        {"name": "Max", "model": "mb", "persona": "You are the {side}."},
    ],
    "sides": {"proposition": "Ada", "opposition": "Max"},
    "moderator": {"name": "Chair", "announce": "{phase}: a long announcement of many words here."},
    "phases": [{"name": "Speeches", "speakers": ["proposition", "opposition"], "turns": 2}],
    "seed": 2,
}


def reply(request: ChatRequest) -> str:
    # The proposition (whoever argues it) says four words, the opposition two.
    proposition = "proposition" in request.messages[0]["content"]
    return "one two three four" if proposition else "one two"


async def play_both_ways(folder: Path) -> None:
    """Two debates: Ada proposes in the first, Max in the second."""
    swapped = {**DEBATE, "sides": {"proposition": "Max", "opposition": "Ada"}}
    for data in (DEBATE, swapped):
        await play_scripted(folder, data, reply)


async def test_metrics_grouped_by_side_follow_the_side_not_the_agent(tmp_path: Path) -> None:
    await play_both_ways(tmp_path)
    frames = load_frames([tmp_path])
    assert sorted(frames.agents["side"]) == [
        "opposition",
        "opposition",
        "proposition",
        "proposition",
    ]
    by_side = {g.group: g for g in analyse(frames, by="side").groups}
    assert set(by_side) == {"proposition", "opposition"}
    assert by_side["proposition"].metrics["words_per_turn"].value == 4.0
    assert by_side["opposition"].metrics["words_per_turn"].value == 2.0
    assert by_side["proposition"].turns == 4  # two per debate; the chair's lines are not turns
    by_agent = {g.group: g for g in analyse(frames, by="agent").groups}
    assert by_agent["Ada"].metrics["words_per_turn"].value == 3.0  # one debate each side


async def test_report_by_side_from_the_cli(tmp_path: Path) -> None:
    await play_both_ways(tmp_path / "t")
    result = sparring("report", tmp_path / "t", "--by", "side", "--format", "json")
    assert result.returncode == 0, result.stderr
    groups = {g["group"]: g for g in json.loads(result.stdout)["groups"]}
    assert (
        set(groups) == {"proposition", "opposition"}
        and groups["opposition"]["side"] == "opposition"
    )
