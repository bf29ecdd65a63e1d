"""Terminal rendering helpers."""

from __future__ import annotations

import io

from rich.console import Console

from runner.console import PullProgress, describe_outcome
from runner.transcript import Outcome


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
