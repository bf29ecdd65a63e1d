"""Transcripts as pandas tables, and the same files read by DuckDB as docs/report.md shows."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd

from runner.analysis.frames import load_frames, turns_frame
from tests.runner.analysis.transcripts import Agent, Write

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "transcripts" / "sample" / "i-lost.jsonl"
AGENTS = [Agent("a", "model-a", persona="You are A."), Agent("b", "model-b", persona="You are B.")]


def test_one_row_per_turn_with_the_conversation_joined_in() -> None:
    turns = turns_frame([SAMPLE])
    assert len(turns) == 7
    assert list(turns["index"]) == list(range(7))
    first = turns.iloc[1]
    assert first["scenario"] == "i-lost"
    assert first["seed"] == 1790013510
    assert first["speaker"] == "qwen" and first["model"] == "qwen:0.5b"
    assert first["persona"].startswith("You are playing an argument game")
    assert first["winner"] == "qwen" and first["loser"] == "llama"
    assert first["outcome_turn"] == 6
    assert bool(turns.iloc[0]["scripted"]) and not bool(first["scripted"])
    assert pd.isna(turns.iloc[0]["ttft_ms"])  # a scripted line has no timing


def test_conversations_and_agents_tables(write: Write, folder: Path) -> None:
    write(agents=AGENTS, turns=[("a", "Hi."), ("b", "Hello.")], winner="b", loser="a")
    write(agents=AGENTS, turns=[("a", "Hi.")], status="error", reason="error")
    frames = load_frames([folder])
    c = frames.conversations
    assert sorted(c["status"]) == ["error", "success"]
    assert c.loc[c["status"] == "error", "error_kind"].item() == "timeout"
    assert list(frames.agents["model"]) == ["model-a", "model-b", "model-a", "model-b"]
    assert set(frames.turns["conversation_id"]) == set(c["conversation_id"])


def test_a_conversation_given_twice_counts_once(write: Write, folder: Path) -> None:
    path = write(agents=AGENTS, turns=[("a", "Hi.")])
    copy = folder / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    frames = load_frames([folder, path])
    assert len(frames.conversations) == 1
    assert len(frames.turns) == 1


def test_unreadable_files_are_skipped_and_named_and_ledgers_ignored(
    write: Write, folder: Path
) -> None:
    write(agents=AGENTS, turns=[("a", "Hi.")])
    (folder / "broken.jsonl").write_text('{"type": "turn"}\n', encoding="utf-8")
    (folder / "results.jsonl").write_text('{"game": 1}\n', encoding="utf-8")
    frames = load_frames([folder])
    assert len(frames.conversations) == 1
    assert [p.name for p, _ in frames.skipped] == ["broken.jsonl"]
    assert "broken.jsonl:1" in frames.skipped[0][1]


def test_progress_is_reported_per_file(write: Write, folder: Path) -> None:
    for _ in range(3):
        write(agents=AGENTS, turns=[("a", "Hi.")])
    seen: list[tuple[int, int]] = []
    load_frames([folder], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def readme_query() -> str:
    page = (ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    match = re.search(r"```sql\n(.*?)```", page, re.DOTALL)
    assert match, "docs/report.md shows a DuckDB query"
    return match.group(1)


def test_the_readme_duckdb_query_runs_over_transcripts(write: Write, folder: Path) -> None:
    write(
        agents=AGENTS,
        turns=[("a", "one two three"), ("b", "four five"), ("a", "I lost.")],
        winner="b",
        loser="a",
        reason="end_rule",
        rule="concession",
        decided_at=2,
    )
    write(agents=AGENTS, turns=[("a", "six seven"), ("b", "eight")])
    query = readme_query().replace("transcripts/*.jsonl", f"{folder}/*.jsonl")
    rows = duckdb.sql(query).fetchall()
    frames = load_frames([folder])
    generated = frames.turns[~frames.turns["scripted"]]
    expected = generated.groupby("model")["completion_tokens"].agg(["size", "mean"])
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (model, int(row["size"]), float(row["mean"])) for model, row in expected.iterrows()
    ]
    lost = {r[0]: r[3] for r in rows}
    assert lost == {"model-a": 1, "model-b": 0}
