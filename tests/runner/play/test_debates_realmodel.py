"""The shipped debates, played from the command line on the built-in models as a user
plays them (speeches cut to a few tokens so the test stays short): phases, the chair, the
jury's votes through a real grammar, and the jury's decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.transcript import Transcript, read_transcript
from tests.cli import NOWHERE, ROOT, offline, sparring


def shortened(name: str, folder: Path) -> Path:
    """The shipped scenario with every speech cut to a few tokens."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "scenarios" / name).read_text())
    for phase in data["phases"]:
        phase["budget"] = {"tokens": 6, "words": 4}
    # Room for the longest reason the schema allows (200 characters) and the JSON around it.
    data["jury"]["options"] = {"num_predict": 120}
    path = folder / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def played(name: str, folder: Path) -> Transcript:
    """The shipped debate ``name``, shortened, played with ``sparring run``; its transcript.
    Speeches and votes on two models outlast offline()'s minute on a busy machine."""
    out = folder / "out"
    scenario = shortened(name, folder)
    result = sparring("run", scenario, "--out", out, "--quiet", timeout=500, OLLAMA_HOST=NOWHERE)
    assert result.returncode == 0, result.stderr
    (path,) = sorted(out.glob("*.jsonl"))
    transcript = read_transcript(path)
    assert transcript.run is not None and transcript.end is not None
    return transcript


@pytest.mark.realmodel
@pytest.mark.timeout(600)  # the suite's five minutes are for one conversation, this is a debate
def test_the_oxford_debate_plays_with_its_chair_and_jury(tmp_path: Path) -> None:
    transcript = played("oxford.yaml", tmp_path)  # six speeches, twelve votes
    assert transcript.run is not None and transcript.end is not None
    assert (
        transcript.run.motion
        in yaml.safe_load((ROOT / "scenarios/oxford.yaml").read_text())["motions"]
    )
    assert [p.name for p in transcript.phases] == [
        "Opening speeches", "Rebuttals", "Closing speeches",
    ]  # fmt: skip
    chair = [t for t in transcript.turns if t.role == "moderator"]
    assert len(chair) == 4 and chair[-1].content.startswith("The debate is closed")
    debaters = [t for t in transcript.turns if t.role != "moderator"]
    assert [t.role for t in debaters] == ["proposition", "opposition"] + [
        "opposition", "proposition",
    ] * 2  # fmt: skip
    assert all(t.budget == {"tokens": 6, "words": 4} and t.words is not None for t in debaters)
    votes = transcript.votes
    assert len(votes) == 12 and {v.stage for v in votes} == {"before", "after"}
    for vote in votes:  # the grammar makes even a tiny model follow the schema
        assert vote.vote in ("for", "against", "undecided"), vote.error
        assert json.loads(vote.raw, strict=False)["vote"] == vote.vote
        assert vote.self_judged  # on the built-in models every judge is a debater's model
    outcome = transcript.end.outcome
    if outcome.reason != "end_rule":
        assert outcome.reason == "jury" and outcome.rule == "moved"
    assert outcome.votes is not None and set(outcome.votes) == {"before", "after"}
    shown = offline("show", transcript.path)
    assert shown.returncode == 0 and "Opening speeches" in shown.stdout and "jury" in shown.stdout


@pytest.mark.realmodel
@pytest.mark.timeout(600)
def test_the_policy_debate_plays_its_cross_examination(tmp_path: Path) -> None:
    transcript = played("policy-debate.yaml", tmp_path)  # twelve speeches, two votes
    assert transcript.run is not None and transcript.end is not None
    assert transcript.run.motion == "Resolved: the government should adopt a four-day school week."
    cross = [t.speaker for t in transcript.turns if t.phase == 1]
    assert cross == ["Negative", "Affirmative", "Negative", "Affirmative"]
    assert len(transcript.votes) == 2 and {v.stage for v in transcript.votes} == {"after"}
    if transcript.end.outcome.reason != "end_rule":
        assert transcript.end.outcome.reason == "jury"
