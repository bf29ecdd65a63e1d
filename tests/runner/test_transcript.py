"""The transcript writer never overwrites; the reader is typed and tolerates a cut last line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.transcript import (
    SCHEMA_VERSION,
    TranscriptError,
    TranscriptWriter,
    ensure_writable,
    iter_transcripts,
    read_transcript,
)

RUN = {
    "type": "run",
    "schema_version": SCHEMA_VERSION,
    "run_id": "r",
    "conversation_id": "c",
    "scenario": "s",
    "scenario_hash": "sha256:x",
    "seed": 1,
    "order": "round_robin",
    "max_turns": 4,
    "agents": [{"name": "A", "model": "m"}, {"name": "B", "model": "m"}],
    "backend": "scripted",
    "sparring_version": "0",
    "started_at": "2026-01-01T00:00:00Z",
}
TURN = {
    "type": "turn",
    "index": 0,
    "round": 1,
    "speaker": "A",
    "model": "m",
    "content": "hi",
    "started_at": "t0",
    "ended_at": "t1",
    "attempts": 1,
    "scripted": False,
}
END = {
    "type": "end",
    "status": "success",
    "turns": 1,
    "ended_at": "t2",
    "outcome": {"winner": None, "loser": None, "reason": "max_turns"},
}


def write_lines(path: Path, *records: dict[str, object], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")
    return path


def test_writer_flushes_each_line_and_never_overwrites(tmp_path: Path) -> None:
    first = TranscriptWriter.create(tmp_path, "name")
    first.write(RUN)
    # Flushed: readable while the writer is still open.
    assert read_transcript(first.path).run.scenario == "s"
    second = TranscriptWriter.create(tmp_path, "name")
    assert second.path != first.path
    first.close()
    second.close()
    assert first.path.read_text().count("\n") == 1


def test_round_trip(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", RUN, TURN, END)
    transcript = read_transcript(path)
    assert transcript.status == "success" and not transcript.truncated
    assert transcript.turns[0].content == "hi" and transcript.end is not None


def test_truncated_last_line_is_tolerated(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", RUN, TURN, tail=json.dumps(TURN)[:20])
    transcript = read_transcript(path)
    assert transcript.truncated and transcript.status == "incomplete"
    assert len(transcript.turns) == 1


def test_corruption_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(RUN) + "\n{broken\n" + json.dumps(END) + "\n")
    with pytest.raises(TranscriptError, match=r"t.jsonl:2: not a JSON line"):
        read_transcript(path)


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", {**RUN, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(TranscriptError, match="upgrade sparring"):
        read_transcript(path)


def test_first_line_must_be_run(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError, match="first line must be a 'run' record"):
        read_transcript(write_lines(tmp_path / "t.jsonl", TURN))


def test_missing_field_names_the_line(tmp_path: Path) -> None:
    bad_turn = {k: v for k, v in TURN.items() if k != "speaker"}
    with pytest.raises(TranscriptError, match=r":2: turn record: speaker"):
        read_transcript(write_lines(tmp_path / "t.jsonl", RUN, bad_turn))


def test_unknown_fields_are_kept_for_forward_compatibility(tmp_path: Path) -> None:
    transcript = read_transcript(write_lines(tmp_path / "t.jsonl", {**RUN, "judge": "x"}))
    assert transcript.run.model_extra == {"judge": "x"}


def test_iter_transcripts_expands_folders(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", RUN)
    (tmp_path / "sub").mkdir()
    write_lines(tmp_path / "sub" / "b.jsonl", RUN, TURN, END)
    assert [t.path.name for t in iter_transcripts([tmp_path])] == ["a.jsonl", "b.jsonl"]


def test_golden_sample_stays_readable() -> None:
    """Files written in schema version 1 must stay readable by every later reader."""
    sample = Path(__file__).parents[2] / "transcripts" / "sample" / "i-lost.jsonl"
    transcript = read_transcript(sample)
    assert transcript.run.schema_version == 1 and transcript.run.scenario == "i-lost"
    assert transcript.turns[0].scripted and not transcript.turns[1].scripted
    assert transcript.end is not None and transcript.end.status == "success"
    assert transcript.end.outcome.loser == transcript.turns[-1].speaker


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TranscriptError, match="cannot write transcripts"):
        ensure_writable(blocker / "out")
    ensure_writable(tmp_path / "new" / "folder")
    assert (tmp_path / "new" / "folder").is_dir()
