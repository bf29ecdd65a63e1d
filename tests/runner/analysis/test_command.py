"""``sparring report``: JSON, CSV and HTML from the command line, and its errors."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.analysis import leaderboard
from runner.analysis.leaderboard import LeaderboardRow
from runner.analysis.metrics import METRIC_NAMES
from runner.cli import main
from tests.runner.analysis.transcripts import Agent, Write

ROOT = Path(__file__).resolve().parents[3]
AGENTS = [Agent("a", "model-a"), Agent("b", "model-b")]
LINES = ["Cities are loud and busy.", "Villages are calm. Very calm!", "Why would anyone agree?"]


@pytest.fixture
def transcripts(write: Write, folder: Path) -> Path:
    for i in range(6):
        write(
            agents=AGENTS,
            turns=[("a", LINES[i % 3]), ("b", LINES[(i + 1) % 3]), ("a", "Fine. I lost.")],
            winner="b" if i % 2 else None,
            loser="a" if i % 2 else None,
            reason="end_rule" if i % 2 else "max_turns",
            rule="concession" if i % 2 else None,
            decided_at=2,
            repeat_index=i,
        )
    return folder


def report(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_gives_every_metric_with_its_interval(
    transcripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys, transcripts, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [g["group"] for g in data["groups"]] == ["model-a", "model-b"]
    a = data["groups"][0]
    assert (a["conversations"], a["turns"]) == (6, 12)
    assert set(a["metrics"]) == set(METRIC_NAMES)
    assert a["metrics"]["concession_rate"]["value"] == 0.5
    rate = a["metrics"]["concession_rate"]
    assert rate["ci_low"] < 0.5 < rate["ci_high"]
    assert data["scenarios"][0]["scenario"] == "test"


def test_the_same_transcripts_print_the_same_json(
    transcripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = report(capsys, transcripts, "--format", "json")[1]
    assert report(capsys, transcripts, "--format", "json")[1] == first
    other_seed = report(capsys, transcripts, "--format", "json", "--seed", "9")[1]
    assert other_seed != first  # the seed reaches the bootstrap


def test_csv_has_one_row_per_group_and_metric_with_the_json_numbers(
    transcripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys, transcripts, "--format", "csv", "--by", "agent")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 * len(METRIC_NAMES)
    assert {r["group"] for r in rows} == {"a", "b"}
    data = json.loads(report(capsys, transcripts, "--format", "json", "--by", "agent")[1])
    words = data["groups"][0]["metrics"]["words_per_turn"]
    row = next(r for r in rows if r["group"] == "a" and r["metric"] == "words_per_turn")
    assert float(row["value"]) == words["value"]
    assert float(row["ci_low"]) == words["ci_low"]


def test_html_goes_to_the_output_file(
    transcripts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "r.html"
    code, out, err = report(capsys, transcripts, "-o", out_file)
    assert code == 0
    assert out == ""
    assert f"report: {out_file} (6 conversations, 2 groups by model)" in err
    page = out_file.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert (out_file.stat().st_mode & 0o777) == 0o644


def test_a_tournament_folder_is_reported_without_its_ledger(
    transcripts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (transcripts / "results.jsonl").write_text('{"game": 1}\n', encoding="utf-8")
    code, _, err = report(capsys, transcripts, "-o", tmp_path / "r.html")
    assert code == 0
    assert "skipped" not in err


def test_unreadable_files_are_named_and_the_rest_reported(
    transcripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (transcripts / "junk.jsonl").write_text("not json\n", encoding="utf-8")
    code, out, err = report(capsys, transcripts, "--format", "json")
    assert code == 0
    assert json.loads(out)["skipped"] == 1
    assert "skipped 1 unreadable file(s); first:" in err and "junk.jsonl:1" in err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "missing: no such file or folder"),
        (lambda p: p, "no transcripts (*.jsonl) under"),
    ],
)
def test_nothing_to_report_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    code, out, err = report(capsys, make(tmp_path), "--format", "json")  # type: ignore[operator]
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_an_unwritable_output_is_one_line_and_status_2(
    transcripts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = report(capsys, transcripts, "-o", tmp_path / "no" / "such" / "r.html")
    assert code == 2
    assert "cannot write" in err and len(err.strip().splitlines()) == 1


def test_the_real_command_line_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runner.cli", "report", str(tmp_path / "nothing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"sparring: {tmp_path / 'nothing'}: no such file or folder\n"


def test_a_tournament_folders_leaderboard_reaches_the_page(
    transcripts: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [LeaderboardRow(name="model-b", rating=1520, games=6, wins=3, draws=3, losses=0)]
    judges = {"judges": [], "between_judges": None}
    asked: list[Path] = []

    def ratings(folder: Path) -> leaderboard.Standings:
        asked.append(folder)
        return leaderboard.Standings(rows=rows, method="Bradley-Terry", judges=judges)

    monkeypatch.setattr(leaderboard, "tournament_standings", ratings)
    out_file = tmp_path / "r.html"
    assert report(capsys, transcripts, "-o", out_file)[0] == 0
    assert asked == []  # not a tournament folder: no leaderboard asked for
    assert page_data(out_file)["leaderboard"] is None
    (transcripts / "results.jsonl").write_text('{"game": 1}\n', encoding="utf-8")
    assert report(capsys, transcripts, "-o", out_file)[0] == 0
    assert asked == [transcripts]
    data = page_data(out_file)
    assert data["leaderboard"] == [rows[0].model_dump()]
    assert (data["ratingMethod"], data["judges"]) == ("Bradley-Terry", judges)


def page_data(path: Path) -> dict[str, Any]:
    page = path.read_text(encoding="utf-8")
    block = re.search(r'id="report-data">(.*?)</script>', page, re.S)
    assert block
    return json.loads(block.group(1))  # type: ignore[no-any-return]


def test_a_progress_bar_shows_on_a_terminal(transcripts: Path) -> None:
    from rich.console import Console

    from runner.analysis import command

    terminal = io.StringIO()
    args = argparse.Namespace(
        paths=[str(transcripts)],
        output=None,
        format="json",
        by="model",
        max_sentences=None,
        seed=0,
        resamples=200,
    )
    out = io.StringIO()
    assert command.run(args, Console(file=terminal, force_terminal=True, width=100), out) == 0
    assert "reading transcripts" in terminal.getvalue()
    assert json.loads(out.getvalue())["conversations"] == 6


def test_killed_and_failed_conversations_count_for_text_not_outcomes(
    write: Write, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(agents=AGENTS, turns=[("a", "One two three."), ("b", "Four.")], winner="a", loser="b")
    write(agents=AGENTS, turns=[("a", "Five six seven eight nine.")], status="incomplete")
    write(agents=AGENTS, turns=[], status="incomplete")  # killed before its first turn
    code, out, _ = report(capsys, folder, "--format", "json")
    assert code == 0
    a = json.loads(out)["groups"][0]["metrics"]
    assert a["win_rate"] == {"value": 1.0, "ci_low": None, "ci_high": None, "n": 1}
    assert a["words_per_turn"]["value"] == 4.0  # (3 + 5) words over two turns
    assert a["words_per_turn"]["n"] == 2
