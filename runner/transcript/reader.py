"""Reading transcripts into the typed records of :mod:`runner.transcript.records`.

The reader accepts every file any version-1 writer produced: fields added since are
optional, unknown fields are kept, record types it does not know are skipped (kept as
raw dicts in ``Transcript.other``), a cut-off last line (the writer was killed) is
tolerated, and a zero-byte file (killed before its first line) reads as ``incomplete``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from runner import files
from runner.transcript.records import (
    SCHEMA_VERSION,
    AgentInfo,
    EndRecord,
    PhaseRecord,
    RunRecord,
    TurnRecord,
    VerdictRecord,
    VoteRecord,
)
from runner.transcript.writer import TranscriptError

log = structlog.get_logger("sparring.transcript")


@dataclass(slots=True)
class Transcript:
    path: Path
    run: RunRecord | None  # None only for a zero-byte file
    turns: list[TurnRecord] = field(default_factory=list)
    end: EndRecord | None = None
    truncated: bool = False  # the last line was cut off (the writer was killed mid-line)
    writing: bool = False  # a writer holds the file's lock: the conversation is running
    verdicts: list[VerdictRecord] = field(default_factory=list)  # a judge's, after the end
    phases: list[PhaseRecord] = field(default_factory=list)  # a phased scenario's stages
    votes: list[VoteRecord] = field(default_factory=list)  # a jury's, before and after
    other: list[dict[str, Any]] = field(default_factory=list)  # records of unknown types

    @property
    def status(self) -> str:
        """``success``/``error``/``cancelled``; ``running`` while a writer holds the file;
        ``incomplete`` when the writer was killed before the ``end`` line."""
        if self.end is not None:
            return self.end.status
        return "running" if self.writing else "incomplete"

    @property
    def conversation_id(self) -> str | None:
        return self.run.conversation_id if self.run else None

    def agent(self, name: str | None) -> AgentInfo | None:
        """The run record's entry for agent ``name`` (model, persona, options...)."""
        return self.run.agent(name) if self.run and name else None

    @property
    def winner(self) -> AgentInfo | None:
        return self.agent(self.end.outcome.winner) if self.end else None

    @property
    def loser(self) -> AgentInfo | None:
        return self.agent(self.end.outcome.loser) if self.end else None


def _run_record(path: Path, number: int, data: Any) -> RunRecord:
    kind = data.get("type") if isinstance(data, dict) else None
    if kind != "run":
        raise TranscriptError(f"{path}:{number}: the first line must be a 'run' record")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise TranscriptError(
            f"{path}:{number}: schema_version {version!r} is newer than this sparring reads "
            f"({SCHEMA_VERSION}); upgrade sparring"
        )
    return RunRecord.model_validate(data)


def read_transcript(path: str | Path) -> Transcript:
    """Read one transcript file; raises :class:`TranscriptError` naming the file and line."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"{path}: cannot read: {exc}") from None
    transcript = Transcript(path=path, run=None, writing=files.held(path))
    lines = raw.split("\n")
    complete = raw.endswith("\n")
    if complete:
        lines.pop()  # the empty string after the final newline
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines) and not complete:
                transcript.truncated = True
                break
            raise TranscriptError(f"{path}:{number}: not a JSON line: {exc.msg}") from None
        _add(transcript, number, data)
    if transcript.run is None and raw.strip():
        raise TranscriptError(f"{path}: no 'run' line")
    return transcript


def _add(transcript: Transcript, number: int, data: Any) -> None:
    path = transcript.path
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if transcript.run is None:
            transcript.run = _run_record(path, number, data)
            return
        if (
            kind in ("phase", "turn", "vote", "end", "verdict")
            and data.get("conversation_id") is None
        ):
            data = {**data, "conversation_id": transcript.run.conversation_id}
        if kind == "turn":
            transcript.turns.append(TurnRecord.model_validate(data))
        elif kind == "end":
            transcript.end = EndRecord.model_validate(data)
        elif kind == "vote":
            transcript.votes.append(VoteRecord.model_validate(data))
        elif kind == "phase":
            transcript.phases.append(PhaseRecord.model_validate(data))
        elif kind == "verdict":
            transcript.verdicts.append(VerdictRecord.model_validate(data))
        elif isinstance(data, dict):
            transcript.other.append(data)  # a record type from a newer writer: kept, not read
        else:
            raise TranscriptError(f"{path}:{number}: expected a JSON object")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TranscriptError(f"{path}:{number}: {kind} record: {where}: {first['msg']}") from None


# A tournament's folder (marked by its definition file) holds JSONL that is not one of its
# games: the results ledger, and interrupted games moved aside, kept but never counted.
TOURNAMENT_DEFINITION = "tournament.json"
TOURNAMENT_RESULTS = "results.jsonl"
TOURNAMENT_ASIDE = "aside"


def transcript_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand directories into the ``*.jsonl`` files below them, in name order, leaving out
    a tournament folder's results and aside/ (unless given as the folder itself)."""
    for item in paths:
        p = Path(item)
        if p.is_dir():
            skip = _tournament_bookkeeping(p)
            yield from sorted(f for f in p.rglob("*.jsonl") if not skip(f))
        else:
            yield p


def _tournament_bookkeeping(root: Path) -> Callable[[Path], bool]:
    """Whether a file found below ``root`` is a tournament folder's results or aside: the
    tournament folders are found once, not looked for above every file."""
    folders = [d.parent for d in root.rglob(TOURNAMENT_DEFINITION) if d.is_file()]
    results = {folder / TOURNAMENT_RESULTS for folder in folders}
    asides = {folder / TOURNAMENT_ASIDE for folder in folders}
    return lambda path: path in results or any(parent in asides for parent in path.parents)


OnError = Callable[[Path, TranscriptError], None]


def _warn(path: Path, error: TranscriptError) -> None:
    log.warning("skipping unreadable transcript", path=str(path), error=str(error))


def iter_transcripts(
    paths: Iterable[str | Path], *, skip_unreadable: bool = False, on_skip: OnError = _warn
) -> Iterator[Transcript]:
    """Every transcript under ``paths``, one at a time (files, or folders searched deeply).

    With ``skip_unreadable``, a file that cannot be read is reported to ``on_skip`` (by
    default a logged warning) and skipped; otherwise its error is raised.
    """
    for path in transcript_paths(paths):
        try:
            yield read_transcript(path)
        except TranscriptError as error:
            if not skip_unreadable:
                raise
            with contextlib.suppress(Exception):
                on_skip(path, error)
