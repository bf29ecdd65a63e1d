"""The transcript schema: written and read through the same typed records."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from structlog.testing import capture_logs

from runner.transcript import (
    SCHEMA_VERSION,
    AgentInfo,
    EndRecord,
    Outcome,
    Record,
    RunRecord,
    TranscriptError,
    TranscriptWriteError,
    TranscriptWriter,
    TurnRecord,
    ensure_writable,
    iter_transcripts,
    json_schema,
    read_transcript,
    transcript_paths,
)
from runner.transcript import writer as writer_module

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "transcripts" / "sample" / "i-lost.jsonl"

RUN = RunRecord(
    run_id="r",
    conversation_id="c",
    scenario="s",
    scenario_hash="sha256:x",
    seed=1,
    order="round_robin",
    max_turns=4,
    agents=[
        AgentInfo(name="A", model="ma", persona="You are A."),
        AgentInfo(name="B", model="mb", persona="You are B."),
    ],
    backend="scripted",
    sparring_version="0",
    started_at="2026-01-01T00:00:00Z",
)
TURN = TurnRecord(
    conversation_id="c",
    index=0,
    round=1,
    speaker="A",
    model="ma",
    content="hi",
    started_at="t0",
    ended_at="t1",
)
END = EndRecord(
    conversation_id="c",
    status="success",
    turns=1,
    ended_at="t2",
    outcome=Outcome(winner="B", loser="A", reason="end_rule", rule="concession", turn=0),
)


def write_lines(path: Path, *records: Any, tail: str = "") -> Path:
    lines = [r.model_dump_json() if isinstance(r, Record) else json.dumps(r) for r in records]
    path.write_text("".join(line + "\n" for line in lines) + tail, encoding="utf-8")
    return path


def test_written_records_read_back_equal(tmp_path: Path) -> None:
    writer = TranscriptWriter.create(tmp_path, "name")
    for record in (RUN, TURN, END):
        writer.write(record)
    writer.close()
    transcript = read_transcript(writer.path)
    assert (transcript.run, transcript.turns, transcript.end) == (RUN, [TURN], END)
    assert transcript.status == "success" and not transcript.truncated


def test_every_line_carries_type_and_conversation_id(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", RUN, TURN, END)
    for line in path.read_text().splitlines():
        data = json.loads(line)
        assert data["conversation_id"] == "c" and data["type"] in ("run", "turn", "end")


def test_every_written_line_follows_the_published_json_schema(tmp_path: Path) -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for line in write_lines(tmp_path / "t.jsonl", RUN, TURN, END).read_text().splitlines():
        jsonschema.validate(json.loads(line), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**json.loads(TURN.model_dump_json()), "index": "first"}, schema)


def test_writer_flushes_each_line_and_never_overwrites(tmp_path: Path) -> None:
    first = TranscriptWriter.create(tmp_path, "name")
    first.write(RUN)
    # On disk at once: readable while the writer is still open, and marked as in progress.
    transcript = read_transcript(first.path)
    assert transcript.run == RUN and transcript.status == "running"
    second = TranscriptWriter.create(tmp_path, "name")
    assert second.path != first.path
    first.close()
    second.close()
    assert first.path.read_text().count("\n") == 1
    assert read_transcript(first.path).status == "incomplete"  # closed without an end line


def test_a_failed_write_leaves_only_whole_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = TranscriptWriter.create(tmp_path, "name")
    writer.write(RUN)
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))  # part of the line reaches the disk...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(writer_module.os, "write", half_then_full)
    with pytest.raises(TranscriptWriteError, match="No space left on device") as info:
        writer.write(TURN)
    assert info.value.folder == tmp_path
    with pytest.raises(TranscriptWriteError):
        writer.write(END)  # the writer stays failed: no line after a gap
    writer.close()
    transcript = read_transcript(writer.path)  # every line whole: nothing was cut off
    assert transcript.run == RUN and transcript.turns == [] and not transcript.truncated


def test_truncated_last_line_is_tolerated(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", RUN, TURN, tail=TURN.model_dump_json()[:20])
    transcript = read_transcript(path)
    assert transcript.truncated and transcript.status == "incomplete"
    assert len(transcript.turns) == 1


def test_zero_byte_file_reads_as_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"")
    transcript = read_transcript(path)
    assert transcript.run is None and transcript.status == "incomplete"


def test_corruption_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(RUN.model_dump_json() + "\n{broken\n" + END.model_dump_json() + "\n")
    with pytest.raises(TranscriptError, match=r"t.jsonl:2: not a JSON line"):
        read_transcript(path)


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    newer = {**RUN.model_dump(), "schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(TranscriptError, match="upgrade sparring"):
        read_transcript(write_lines(tmp_path / "t.jsonl", newer))


def test_first_line_must_be_run(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError, match="first line must be a 'run' record"):
        read_transcript(write_lines(tmp_path / "t.jsonl", TURN))


def test_missing_field_names_the_line(tmp_path: Path) -> None:
    bad_turn = {k: v for k, v in TURN.model_dump().items() if k != "speaker"}
    with pytest.raises(TranscriptError, match=r":2: turn record: speaker"):
        read_transcript(write_lines(tmp_path / "t.jsonl", RUN, bad_turn))


def test_unknown_fields_are_kept_and_unknown_records_skipped(tmp_path: Path) -> None:
    verdict = {"type": "note", "conversation_id": "c", "text": "from a newer writer"}
    path = write_lines(
        tmp_path / "t.jsonl",
        {**RUN.model_dump(), "judge": "x"},
        TURN,
        verdict,
        {**END.model_dump(), "note": "later field"},
    )
    transcript = read_transcript(path)
    assert transcript.run is not None and transcript.run.model_extra == {"judge": "x"}
    assert transcript.other == [verdict]
    assert transcript.end is not None and transcript.end.model_extra == {"note": "later field"}
    assert transcript.status == "success" and len(transcript.turns) == 1


def test_winner_and_loser_come_with_their_models_and_personas(tmp_path: Path) -> None:
    transcript = read_transcript(write_lines(tmp_path / "t.jsonl", RUN, TURN, END))
    assert transcript.winner is not None and transcript.loser is not None
    assert (transcript.winner.model, transcript.winner.persona) == ("mb", "You are B.")
    assert (transcript.loser.model, transcript.loser.persona) == ("ma", "You are A.")
    draw = END.model_copy(update={"outcome": Outcome(reason="max_turns")})
    drawn = read_transcript(write_lines(tmp_path / "d.jsonl", RUN, TURN, draw))
    assert drawn.winner is None and drawn.loser is None


def test_iter_transcripts_expands_folders(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", RUN)
    (tmp_path / "sub").mkdir()
    write_lines(tmp_path / "sub" / "b.jsonl", RUN, TURN, END)
    assert [t.path.name for t in iter_transcripts([tmp_path])] == ["a.jsonl", "b.jsonl"]


def test_a_tournament_folder_yields_its_games_only(tmp_path: Path) -> None:
    cup = tmp_path / "runs" / "cup"
    for sub in ("games", "aside"):
        (cup / sub).mkdir(parents=True)
    (cup / "tournament.json").write_text("{}")
    (cup / "results.jsonl").write_text('{"game_id": "g1"}\n')
    write_lines(cup / "games" / "g1.jsonl", RUN, TURN, END)
    write_lines(cup / "aside" / "g1.jsonl", RUN, TURN)  # cut off, played again: not counted
    write_lines(tmp_path / "runs" / "results.jsonl", RUN, TURN, END)  # not a tournament's
    found = [p.relative_to(tmp_path).as_posix() for p in transcript_paths([tmp_path])]
    assert found == ["runs/cup/games/g1.jsonl", "runs/results.jsonl"]
    assert [t.path for t in iter_transcripts([cup])] == [cup / "games" / "g1.jsonl"]
    assert list(transcript_paths([cup / "aside"])) == [cup / "aside" / "g1.jsonl"]


def test_iter_transcripts_can_skip_unreadable_files_with_a_warning(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", RUN, TURN, END)
    (tmp_path / "b.jsonl").write_text("this is not a transcript\nat all\n")
    write_lines(tmp_path / "c.jsonl", RUN)
    with pytest.raises(TranscriptError, match=r"b\.jsonl"):
        list(iter_transcripts([tmp_path]))
    with capture_logs() as logs:
        names = [t.path.name for t in iter_transcripts([tmp_path], skip_unreadable=True)]
    assert names == ["a.jsonl", "c.jsonl"]
    assert [(e["log_level"], Path(e["path"]).name) for e in logs] == [("warning", "b.jsonl")]


def test_golden_sample_stays_readable() -> None:
    """Files written in schema version 1 by the first writer stay readable."""
    transcript = read_transcript(SAMPLE)
    assert transcript.run is not None
    assert transcript.run.schema_version == 1 and transcript.run.scenario == "i-lost"
    assert transcript.turns[0].scripted and not transcript.turns[1].scripted
    assert transcript.end is not None and transcript.end.status == "success"
    assert transcript.end.outcome.loser == transcript.turns[-1].speaker
    # Its turn lines predate conversation_id on every line: the reader fills it in.
    assert {t.conversation_id for t in transcript.turns} == {transcript.run.conversation_id}
    assert transcript.loser is not None and transcript.loser.model == "llama3.2:1b"


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TranscriptWriteError, match="cannot write transcripts"):
        ensure_writable(blocker / "out")
    ensure_writable(tmp_path / "new" / "folder")
    assert (tmp_path / "new" / "folder").is_dir()
