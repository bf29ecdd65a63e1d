"""Transcripts: the product's data format (versioned JSONL), written and read through
one schema. See :mod:`runner.transcript.records` for the format and its compatibility
rules, and docs/transcripts.md for every field."""

from runner.transcript.reader import Transcript, iter_transcripts, read_transcript, transcript_paths
from runner.transcript.records import (
    SCHEMA_VERSION,
    AgentInfo,
    AttemptError,
    EndRecord,
    ErrorInfo,
    Outcome,
    PhaseRecord,
    Record,
    RunRecord,
    Status,
    TimeoutsInfo,
    Totals,
    TurnRecord,
    VerdictRecord,
    VoteRecord,
    json_schema,
)
from runner.transcript.writer import (
    TranscriptError,
    TranscriptWriteError,
    TranscriptWriter,
    ensure_writable,
    slug,
)

__all__ = [
    "SCHEMA_VERSION",
    "AgentInfo",
    "AttemptError",
    "EndRecord",
    "ErrorInfo",
    "Outcome",
    "PhaseRecord",
    "Record",
    "RunRecord",
    "Status",
    "TimeoutsInfo",
    "Totals",
    "Transcript",
    "TranscriptError",
    "TranscriptWriteError",
    "TranscriptWriter",
    "TurnRecord",
    "VerdictRecord",
    "VoteRecord",
    "ensure_writable",
    "iter_transcripts",
    "json_schema",
    "read_transcript",
    "slug",
    "transcript_paths",
]
