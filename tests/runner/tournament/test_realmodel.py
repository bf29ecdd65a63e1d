"""A tiny tournament on the embedded engine's built-in model, judge included, as a user
runs it: real generation, real structured output from a grammar, a real leaderboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.transcript import read_transcript
from tests.runner.tournament.helpers import write_tournament

ROOT = Path(__file__).resolve().parents[3]


def sparring(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OPENAI_"))}
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", *map(str, args), "--log-format", "console"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.realmodel
def test_a_judged_tournament_on_the_built_in_model(tmp_path: Path) -> None:
    entrants = [
        "smollm2:135m",
        "{name: terse, model: smollm2:135m, persona: '{seat_persona} Answer in five words.'}",
    ]
    judge = (
        "judge: {model: smollm2:135m, when: always, "
        "options: {temperature: 0, num_predict: 60}}\n"
        "backend: local\n"
    )
    path = write_tournament(tmp_path / "t", entrants, games=1, max_turns=3, extra=judge)
    scenario = tmp_path / "t" / "duel.yaml"
    scenario.write_text(
        scenario.read_text() + "defaults:\n  options: {num_predict: 12, temperature: 0.7}\n"
    )
    out = tmp_path / "out"
    result = sparring("tournament", "run", path, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and {r["status"] for r in lines} == {"success"}
    for r in lines:
        transcript = read_transcript(out / r["transcript"])
        opener, replier = r["seats"]["opener"], r["seats"]["replier"]
        assert [t.speaker for t in transcript.turns] == [opener, replier, opener]
        assert sorted(v.order for v in transcript.verdicts) == ["as_seated", "swapped"]
        for verdict in transcript.verdicts:  # the grammar makes even a tiny model comply
            assert verdict.winner in ("first", "second", "draw")
            assert json.loads(verdict.raw, strict=False)["winner"] == verdict.winner
    board = json.loads(sparring("leaderboard", out, "--format", "json").stdout)
    assert {e["name"] for e in board["entrants"]} == {"smollm2:135m", "terse"}
    assert sum(e["games"] for e in board["entrants"]) == 4
