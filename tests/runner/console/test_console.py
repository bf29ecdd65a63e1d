"""Terminal rendering helpers."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from runner.console import console, describe_outcome
from runner.console.live import LiveObserver
from runner.console.progress import ProgressObserver, PullProgress
from runner.console.summary import tally_table
from runner.console.transcript import _turn_line
from runner.play.events import ConversationFinished, TextDelta, TurnFinished, TurnStarted
from runner.run.tally import Row, Tally
from runner.transcript import EndRecord, Outcome, RunRecord, TurnRecord


def test_pull_progress_shows_status_changes_and_ten_percent_steps() -> None:
    buffer = io.StringIO()
    progress = PullProgress(Console(file=buffer, width=200))
    progress("m", "pulling manifest", None, None)
    for done in range(0, 1001, 7):  # many small updates, as ollama sends them
        progress("m", "downloading", done, 1000)
    progress("m", "success", None, None)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "pulling m: pulling manifest"
    assert lines[-1] == "pulling m: success"
    downloading = [line for line in lines if "downloading" in line]
    assert 10 <= len(downloading) <= 12
    assert downloading[0] == "pulling m: downloading 0%"


def test_describe_outcome() -> None:
    won = Outcome(winner="A", loser="B", reason="end_rule", rule="concession", turn=4)
    assert describe_outcome(won, "success") == "A wins, B loses (turn 4: concession)"
    draw = Outcome(reason="end_rule", rule="consensus")
    assert describe_outcome(draw, "success") == "draw (consensus)"
    assert describe_outcome(Outcome(reason="max_turns"), "success") == "turn limit reached"
    assert describe_outcome(Outcome(reason="error"), "error") == "error"


def _turn(content: str, scripted: bool = False) -> TurnRecord:
    return TurnRecord(
        index=3, round=2, speaker="Max", model="m", content=content, started_at="t",
        ended_at="t", done_reason=None if scripted else "stop", scripted=scripted,
    )  # fmt: skip


def test_an_empty_reply_is_said_live_in_progress_and_in_show() -> None:
    buffer = io.StringIO()
    live = LiveObserver(Console(file=buffer, width=200))
    live.turn_started(TurnStarted("c", "Max", "m", False, 2))
    live.turn_finished(TurnFinished(_turn(" \n")))
    live.turn_started(TurnStarted("c", "Max", "m", False, 3))
    live.delta(TextDelta("c", "Max", "Fine."))
    live.turn_finished(TurnFinished(_turn("Fine.")))
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "Max (m): (empty reply: the model stopped before any text, done_reason stop)",
        "Max (m): Fine.",
    ]
    err = io.StringIO()
    with ProgressObserver(Console(file=err, width=200), total=1, max_turns=4) as progress:
        progress.turn_finished(TurnFinished(_turn("")))
        progress.turn_finished(TurnFinished(_turn("Hello.")))
    said = [line for line in err.getvalue().splitlines() if "empty reply" in line]
    assert said == [
        "Max (m), turn 3: empty reply: the model stopped before any text, done_reason stop"
    ]
    assert "empty reply" in _turn_line(_turn(""), ["Max"]).plain
    assert "empty reply" not in _turn_line(_turn("", scripted=True), ["Max"]).plain


def test_piped_output_is_never_wrapped_mid_word(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # what a terminal-less shell leaves rich with
    buffer = io.StringIO()
    out = console(buffer)
    tally = Tally()
    agent, model = "a-long-agent-name-" * 3, "smollm2:135m-instruct-fp16-" * 2
    tally.rows[(agent, model)] = Row(agent, model, concessions=12)
    tally.statuses["success"] = 3
    tally_table(out, tally)
    text = "the persona, " * 20
    out.print(text)
    lines = buffer.getvalue().splitlines()
    assert any(agent in line and model in line and "12" in line for line in lines), lines
    assert "concessions" in lines[1]
    assert text.rstrip() in [line.rstrip() for line in lines]


def test_a_reply_cut_off_by_ctrl_c_says_so_live() -> None:
    buffer = io.StringIO()
    live = LiveObserver(Console(file=buffer, width=200))
    live.turn_started(TurnStarted("c", "Sol", "m", False, 2))
    end = EndRecord(status="cancelled", outcome=Outcome(reason="cancelled"), turns=1, ended_at="t")
    run = RunRecord.model_construct()  # the live view reads only the end line here
    live.conversation_finished(ConversationFinished(run, end, Path("t.jsonl")))
    assert buffer.getvalue().splitlines()[0] == "Sol (m): (cut off: interrupted)"
