"""The jury: judge models vote on the motion before and after the debate, in both
presentation orders, each vote a record; the votes moved (or the majority after) decide."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.backends.base import ChatRequest
from agents.backends.scripted import ScriptedBackend
from agents.errors import ConfigError, ServerError
from runner.model.generate import RetryPolicy
from runner.model.pool import BackendPool
from runner.play.conversation import Conversation
from runner.play.jury import VOTE_SCHEMA
from runner.run.plan import RunPlan
from runner.scenario.schema import scenario_from_data
from runner.settings import RunSettings
from runner.transcript import read_transcript

OXFORD: dict[str, Any] = {
    "name": "oxford",
    "motions": ["tea beats coffee"],
    "agents": [
        {"name": "Ada", "model": "ma", "persona": "You argue for."},
        {"name": "Max", "model": "mb", "persona": "You argue against."},
    ],
    "sides": {"proposition": "Ada", "opposition": "Max"},
    "phases": [{"name": "Speeches", "speakers": ["proposition", "opposition"]}],
    "jury": {"judges": ["j1", "j2", {"model": "j3", "name": "Third"}], "vote": ["before", "after"]},
    "end": [{"phrase": "I concede", "outcome": "speaker_loses"}],
    "seed": 4,
}


def vote(value: str) -> str:
    return json.dumps({"vote": value, "reason": "because"})


def stage_of(request: ChatRequest) -> str:
    return "before" if "has not begun" in request.messages[0]["content"] else "after"


def judge(before: str, after: str) -> Any:
    return lambda request: vote(before if stage_of(request) == "before" else after)


async def play(tmp_path: Path, data: dict[str, Any], backend: ScriptedBackend) -> Any:
    run = RunPlan([scenario_from_data(data)])
    settings = RunSettings(out_dir=tmp_path, retry=RetryPolicy(attempts=1, base=0.001))
    await run.bind(BackendPool.fixed(backend, settings))
    return await Conversation(next(iter(run)), settings, run_id="r").run()


def backend(
    judges: dict[str, Any], script: dict[str, Any] | None = None, **debaters: Any
) -> ScriptedBackend:
    def reply(request: ChatRequest) -> str:
        if request.model in judges:
            return str(judges[request.model](request))
        return str(debaters.get(request.model, "A fine point."))

    return ScriptedBackend(script, fallback=reply)


async def test_the_side_that_moved_more_votes_wins_and_every_vote_is_recorded(
    tmp_path: Path,
) -> None:
    judges = {
        "j1": judge("against", "for"),
        "j2": judge("against", "for"),
        "j3": judge("for", "for"),
    }
    engine = backend(judges)
    result = await play(tmp_path, OXFORD, engine)
    transcript = read_transcript(result.path)
    votes = transcript.votes
    assert len(votes) == 12  # three judges, two stages, two orders
    assert [(v.judge, v.stage, v.order) for v in votes[:2]] == [
        ("juror-1", "before", "as_seated"), ("juror-1", "before", "swapped"),
    ]  # fmt: skip
    assert {v.judge for v in votes} == {"juror-1", "juror-2", "Third"}
    assert [v.stage for v in votes] == ["before"] * 6 + ["after"] * 6
    outcome = result.outcome
    assert (outcome.reason, outcome.rule, outcome.winner, outcome.loser) == (
        "jury", "moved", "Ada", "Max",
    )  # fmt: skip
    assert outcome.votes == {
        "before": {"for": 1, "against": 2, "undecided": 0},
        "after": {"for": 3, "against": 0, "undecided": 0},
    }
    assert all(r.config.json_schema == VOTE_SCHEMA for r in engine.requests if r.model[0] == "j")
    # The votes come before the debate's first turn and after its last.
    lines = [json.loads(line)["type"] for line in result.path.read_text().splitlines()]
    assert lines[:8] == ["run"] + ["vote"] * 6 + ["phase"]
    assert lines[-7:] == ["vote"] * 6 + ["end"]


async def test_a_judge_whose_two_orders_disagree_is_undecided(tmp_path: Path) -> None:
    def first_listed(request: ChatRequest) -> str:  # a judge that always takes option one
        return vote("for" if '"for", "against"' in request.messages[0]["content"] else "against")

    judges = {"j1": first_listed, "j2": judge("against", "against"), "j3": first_listed}
    result = await play(tmp_path, OXFORD, backend(judges))
    assert result.outcome.votes["after"] == {"for": 0, "against": 1, "undecided": 2}
    # Before: one against each stage: nothing moved, a draw.
    assert (result.outcome.winner, result.outcome.reason) == (None, "jury")


async def test_the_majority_after_decides_without_a_before_vote(tmp_path: Path) -> None:
    data = {**OXFORD, "jury": {"judges": ["j1", "j2", "j3"]}}
    judges = {
        "j1": judge("for", "against"),
        "j2": judge("for", "against"),
        "j3": judge("for", "for"),
    }
    result = await play(tmp_path, data, backend(judges))
    assert (result.outcome.rule, result.outcome.winner) == ("after", "Max")
    votes = read_transcript(result.path).votes
    assert {v.stage for v in votes} == {"after"} and len(votes) == 6


async def test_a_judge_sees_the_motion_before_and_the_anonymised_debate_after(
    tmp_path: Path,
) -> None:
    engine = backend({m: judge("undecided", "for") for m in ("j1", "j2", "j3")})
    await play(tmp_path, OXFORD, engine)
    asked = [r for r in engine.requests if r.model == "j1"]
    before, _, after, after_swapped = asked
    assert before.messages[1]["content"].startswith("The motion: tea beats coffee")
    assert "A fine point" not in before.messages[1]["content"]
    shown = after.messages[1]["content"]
    assert "Speaker 1 argued for it, Speaker 2 against it." in shown
    assert "Speaker 1: A fine point." in shown and "Ada" not in shown and "Max" not in shown
    assert "Speaker 1 argued against it" in after_swapped.messages[1]["content"]


async def test_a_judge_playing_a_debaters_model_is_flagged(tmp_path: Path) -> None:
    data = {**OXFORD, "jury": {"judges": ["ma", "j2"], "vote": ["after"]}}
    engine = backend({"ma": judge("for", "for"), "j2": judge("for", "for")}, ma="A fine point.")
    result = await play(tmp_path, data, engine)
    flags = {(v.judge, v.self_judged) for v in read_transcript(result.path).votes}
    assert flags == {("juror-1", True), ("juror-2", False)}


async def test_replies_off_the_schema_and_server_failures_are_votes_not_cast(
    tmp_path: Path,
) -> None:
    failing = ServerError("down", backend="scripted", model="j2", status=500)
    data = {**OXFORD, "jury": {"judges": ["j1", "j2"], "vote": ["after"]}}
    # Both of j2's orders: the server fails.
    engine = backend({"j1": lambda request: "I think for"}, {"j2": [failing, failing]})
    result = await play(tmp_path, data, engine)
    votes = read_transcript(result.path).votes
    j1 = [v for v in votes if v.judge == "juror-1"]
    assert [v.attempts for v in j1] == [3, 3] and all(v.vote is None for v in j1)
    assert j1[0].error == "the reply did not follow the vote schema" and j1[0].raw == "I think for"
    j2 = [v for v in votes if v.judge == "juror-2"]
    assert all(v.vote is None and (v.error or "").startswith("server_error") for v in j2)
    assert result.status == "success"
    assert result.outcome.votes == {"after": {"for": 0, "against": 0, "undecided": 2}}


async def test_an_end_rule_decides_and_the_jurys_votes_are_kept(tmp_path: Path) -> None:
    engine = backend({m: judge("for", "for") for m in ("j1", "j2", "j3")}, mb="I concede")
    result = await play(tmp_path, OXFORD, engine)
    outcome = result.outcome
    assert (outcome.reason, outcome.loser) == ("end_rule", "Max")
    assert outcome.votes is not None and outcome.votes["after"]["for"] == 3


@pytest.mark.parametrize(
    ("jury", "expected"),
    [
        ({"judges": []}, "jury.judges: a jury needs at least one judge model; got 0"),
        (
            {"judges": ["j1"], "decide": "moved"},
            "jury.decide: moved compares votes before and after: add before to vote",
        ),
        ({"judges": [{"model": "j1", "name": "Ada"}]}, "jury.judges[0]: 'Ada' is taken"),
        ({"judges": ["j1"], "vote": ["during"]}, "jury.vote[0]: expected one of"),
    ],
    ids=["no-models", "moved-without-before", "name", "stage"],
)
def test_a_bad_jury_is_one_line(jury: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        scenario_from_data({**OXFORD, "jury": jury})
    (problem,) = info.value.problems
    assert problem.startswith(f"<scenario>: {expected}"), problem


def test_a_jury_needs_sides_and_a_motion() -> None:
    data = {k: v for k, v in OXFORD.items() if k not in ("sides", "motions")}
    data["phases"] = [{"name": "Speeches", "speakers": ["Ada", "Max"]}]
    with pytest.raises(ConfigError) as info:
        scenario_from_data(data)
    assert [p.split(": ", 2)[2] for p in info.value.problems] == [
        "a jury votes for a side: add sides (proposition, opposition)",
        "a jury votes on a motion: add motions (or a description stating it)",
    ]


async def test_show_prints_each_judges_votes_and_the_tally(tmp_path: Path) -> None:
    from rich.console import Console

    from runner.console.transcript import show_transcript

    judges = {
        "j1": judge("against", "for"),
        "j2": judge("against", "for"),
        "j3": judge("for", "for"),
    }
    result = await play(tmp_path, OXFORD, backend(judges))
    out = Console(record=True, width=200)
    show_transcript(out, read_transcript(result.path))
    lines = [line.strip() for line in out.export_text().splitlines()]
    start = lines.index("jury")
    assert lines[start + 1 : start + 6] == [
        "juror-1 (j1): before: against/against; after: for/for",
        "juror-2 (j2): before: against/against; after: for/for",
        "Third (j3): before: for/for; after: for/for",
        "before: 1 for, 2 against, 0 undecided",
        "after: 3 for, 0 against, 0 undecided",
    ]
    assert "success: Ada wins, Max loses (the jury, by votes moved)" in lines


async def test_a_judge_may_have_options_of_its_own(tmp_path: Path) -> None:
    jury = {"judges": ["j1", {"model": "j2", "options": {"temperature": 0.9}}]}
    engine = backend({"j1": judge("for", "for"), "j2": judge("for", "for")})
    await play(tmp_path, {**OXFORD, "jury": jury}, engine)
    temperatures = {r.model: r.config.temperature for r in engine.requests if r.model[0] == "j"}
    assert temperatures == {"j1": 0.0, "j2": 0.9}


async def test_the_live_view_shows_phases_the_chair_and_each_vote(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from runner.console.live import LiveObserver

    data = {**OXFORD, "moderator": {"name": "Chair", "announce": "{phase} begins."}}
    judges = {m: judge("against", "for") for m in ("j1", "j2", "j3")}
    buffer = io.StringIO()
    live = LiveObserver(Console(file=buffer, width=200))
    run = RunPlan([scenario_from_data(data)])
    settings = RunSettings(out_dir=tmp_path, retry=RetryPolicy(attempts=1, base=0.001))
    await run.bind(BackendPool.fixed(backend(judges), settings))
    await Conversation(next(iter(run)), settings, run_id="r", observer=live).run()
    lines = [line.strip() for line in buffer.getvalue().splitlines()]
    votes = [line for line in lines if line.startswith("vote ")]
    assert len(votes) == 12
    assert votes[0] == "vote before, as_seated: juror-1 (j1) against: because"
    heading = next(i for i, line in enumerate(lines) if line.startswith("── Speeches"))
    assert lines[heading + 1] == "Chair (moderator, scripted): Speeches begins."
    assert lines[heading + 2].startswith("Ada (ma): ")
    assert votes[-1] == "vote after, swapped: Third (j3) for: because"
