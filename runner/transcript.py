"""Transcripts: the product's data format (versioned JSONL), its writer and its typed reader.

One file per conversation. Line 1 is a ``run`` record, then one ``turn`` record per turn,
and a final ``end`` record. Lines are written whole and flushed one by one, so a crash
loses at most the line being written; the reader tolerates such a truncated last line.
The format is documented field by field in README.md ("Transcript reference").
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from agents.errors import SparringError

SCHEMA_VERSION = 1


class TranscriptError(SparringError):
    """A transcript file that cannot be read (not JSONL, wrong schema, newer version)."""


# ---------------------------------------------------------------------------- writing


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "scenario"


def ensure_writable(out_dir: Path) -> None:
    """Fail before any model call if transcripts cannot be written to ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise TranscriptError(f"{out_dir}: cannot write transcripts: {exc.strerror}") from None


class TranscriptWriter:
    """Appends records to a new file, one flushed line each. Never overwrites a file."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle = handle
        self.closed = False

    @classmethod
    def create(cls, out_dir: Path, stem: str) -> TranscriptWriter:
        base = _slug(stem)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            for n in range(1000):
                path = out_dir / (f"{base}.jsonl" if n == 0 else f"{base}-{n}.jsonl")
                try:
                    # 'x' fails if the file exists, even if another process just made it.
                    handle = path.open("x", encoding="utf-8")
                except FileExistsError:
                    continue
                return cls(path, handle)
        except OSError as exc:
            raise TranscriptError(f"{out_dir}: cannot write transcripts: {exc.strerror}") from None
        raise TranscriptError(f"{out_dir}: could not find a free file name for {base}")

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        self._handle.write(line + "\n")
        self._handle.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                os.fsync(self._handle.fileno())
            except OSError:
                pass
            self._handle.close()


# ---------------------------------------------------------------------------- reading


class _Record(BaseModel):
    # Unknown fields are kept: a newer minor writer may add fields older readers ignore.
    model_config = ConfigDict(frozen=True, extra="allow")


class AgentRecord(_Record):
    name: str
    model: str
    model_digest: str | None = None
    persona: str = ""
    opening: str | None = None
    max_turns: int | None = None
    options: dict[str, Any] = {}
    backend: str | None = None
    host: str | None = None


class RunRecord(_Record):
    type: Literal["run"]
    schema_version: int
    run_id: str
    conversation_id: str
    scenario: str
    description: str = ""
    source: str | None = None
    scenario_hash: str
    repeat_index: int = 0
    repeat: int = 1
    seed: int
    base_seed: int | None = None
    order: str
    history: str | int = "all"
    max_turns: int
    kickoff: str | None = None
    end_rules: list[dict[str, Any]] = []
    vars: dict[str, Any] = {}
    agents: list[AgentRecord]
    backend: str
    backend_reason: str | None = None
    host: str | None = None
    sparring_version: str
    timeouts: dict[str, float] = {}
    started_at: str


class TurnRecord(_Record):
    type: Literal["turn"]
    index: int
    round: int
    speaker: str
    model: str
    content: str
    started_at: str
    ended_at: str
    ttft_ms: float | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    done_reason: str | None = None
    attempts: int = 1
    scripted: bool = False
    seed: int | None = None
    server: dict[str, float] = {}
    host: str | None = None


class OutcomeRecord(_Record):
    winner: str | None = None
    loser: str | None = None
    reason: str
    rule: str | None = None
    turn: int | None = None
    matched: str | None = None


class EndRecord(_Record):
    type: Literal["end"]
    status: Literal["success", "error", "cancelled"]
    outcome: OutcomeRecord
    turns: int
    totals: dict[str, float | int] = {}
    ended_at: str
    duration_s: float | None = None
    error: dict[str, Any] | None = None


@dataclass(slots=True)
class Transcript:
    path: Path
    run: RunRecord
    turns: list[TurnRecord] = field(default_factory=list)
    end: EndRecord | None = None
    # True when the last line was cut off (the writer was killed mid-line).
    truncated: bool = False

    @property
    def status(self) -> str:
        """``success``/``error``/``cancelled``, or ``incomplete`` when the run was killed."""
        return self.end.status if self.end else "incomplete"


def read_transcript(path: str | Path) -> Transcript:
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"{path}: cannot read: {exc}") from None
    lines = raw.split("\n")
    complete = raw.endswith("\n")
    if complete:
        lines.pop()  # the empty string after the final newline
    run: RunRecord | None = None
    transcript: Transcript | None = None
    for number, line in enumerate(lines, start=1):
        last = number == len(lines)
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if last and not complete and transcript is not None:
                transcript.truncated = True
                break
            raise TranscriptError(f"{path}:{number}: not a JSON line: {exc.msg}") from None
        kind = data.get("type") if isinstance(data, dict) else None
        try:
            if number == 1 or run is None:
                if kind != "run":
                    raise TranscriptError(f"{path}:{number}: the first line must be a 'run' record")
                version = data.get("schema_version")
                if not isinstance(version, int) or version > SCHEMA_VERSION:
                    raise TranscriptError(
                        f"{path}:{number}: schema_version {version!r} is newer than this "
                        f"sparring reads ({SCHEMA_VERSION}); upgrade sparring"
                    )
                run = RunRecord.model_validate(data)
                transcript = Transcript(path=path, run=run)
            elif kind == "turn":
                assert transcript is not None
                transcript.turns.append(TurnRecord.model_validate(data))
            elif kind == "end":
                assert transcript is not None
                transcript.end = EndRecord.model_validate(data)
            else:
                raise TranscriptError(f"{path}:{number}: unknown record type {kind!r}")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise TranscriptError(
                f"{path}:{number}: {kind} record: {where}: {first['msg']}"
            ) from None
    if transcript is None:
        raise TranscriptError(f"{path}: empty transcript (no 'run' line)")
    return transcript


def transcript_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand directories into the ``*.jsonl`` files below them, in name order."""
    for item in paths:
        p = Path(item)
        if p.is_dir():
            yield from sorted(p.rglob("*.jsonl"))
        else:
            yield p


def iter_transcripts(paths: Iterable[str | Path]) -> Iterator[Transcript]:
    for path in transcript_paths(paths):
        yield read_transcript(path)
