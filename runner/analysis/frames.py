"""Transcripts as pandas tables: turns, conversations and agents (and a debate's phases,
moderator lines and jury votes).

Files are read one at a time through :mod:`runner.transcript` and copied into column
lists, so a large pile is never held twice (raw lines and table); the tables share the
strings the reader made. One table row per turn, per conversation, and per agent in a
conversation; every table carries ``conversation_id`` to join on. A moderator is no agent:
its lines are in ``moderator``, not ``turns``::

    frames = load_frames(["transcripts/"])
    frames.turns.groupby("model")["completion_tokens"].mean()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from runner.transcript import Transcript, TranscriptError, read_transcript, transcript_paths
from runner.transcript.reader import TOURNAMENT_RESULTS

# A tournament folder holds its results ledger beside the transcripts; it is not one.
RESULTS_FILE = TOURNAMENT_RESULTS  # a tournament folder's ledger, not a transcript

Progress = Callable[[int, int], None]  # (files read, files in all)

CONVERSATION_COLUMNS = (
    "conversation_id run_id path scenario description scenario_hash seed base_seed "
    "repeat_index repeat backend kickoff started_at game_id status turns winner loser "
    "outcome_reason outcome_rule outcome_turn matched duration_s prompt_tokens "
    "completion_tokens retries error_kind error_message motion votes"
).split()
AGENT_COLUMNS = (
    "conversation_id scenario agent position model persona opening temperature backend side"
).split()
RUN_FIELDS = (
    "conversation_id run_id scenario description scenario_hash seed base_seed repeat_index "
    "repeat backend kickoff started_at game_id"
).split()
# The conversation fields repeated on every turn row, so one table answers most questions.
JOINED = "scenario seed repeat_index status winner loser outcome_reason outcome_turn".split()
TURN_FIELDS = (
    "index round speaker model scripted content ttft_ms latency_ms prompt_tokens "
    "completion_tokens done_reason attempts started_at ended_at phase role overrun"
).split()
# phase_name: the name of the turn's phase (its phase record's), null without phases.
TURN_COLUMNS = ["conversation_id", *JOINED, *TURN_FIELDS, "phase_name", "persona", "seed_turn"]
MODERATOR_COLUMNS = "conversation_id index speaker model scripted content phase phase_name".split()
PHASE_COLUMNS = "conversation_id index name speakers turns instruction budget first_turn".split()
VOTE_COLUMNS = "conversation_id judge model stage order vote side reason self_judged error".split()


@dataclass(slots=True)
class Frames:
    """The three tables, a debate's three, and the files that could not be read (path,
    reason)."""

    turns: pd.DataFrame
    conversations: pd.DataFrame
    agents: pd.DataFrame
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    phases: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PHASE_COLUMNS))
    moderator: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MODERATOR_COLUMNS))
    votes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=VOTE_COLUMNS))


def report_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The transcript files under ``paths``, each once, without tournament ledgers."""
    seen: set[Path] = set()
    found: list[Path] = []
    for path in transcript_paths(paths):
        key = path.resolve()
        if path.name == RESULTS_FILE or key in seen:
            continue
        seen.add(key)
        found.append(path)
    return found


def iter_readable(
    paths: list[Path],
    skipped: list[tuple[Path, str]],
    progress: Progress | None = None,
) -> Iterator[Transcript]:
    """Transcripts one at a time; unreadable files go to ``skipped`` with their reason."""
    for done, path in enumerate(paths, start=1):
        try:
            transcript = read_transcript(path)
        except TranscriptError as exc:
            skipped.append((path, str(exc)))
        else:
            if transcript.run is None:
                skipped.append((path, f"{path}: empty file"))
            else:
                yield transcript
        if progress is not None:
            progress(done, len(paths))


class _Columns:
    """Rows added one by one as column lists: cheaper than a list of dicts."""

    def __init__(self, names: Iterable[str]) -> None:
        self.data: dict[str, list[Any]] = {name: [] for name in names}

    def add(self, row: dict[str, Any]) -> None:
        for name, values in self.data.items():
            values.append(row.get(name))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.data)


def _conversation_row(t: Transcript) -> dict[str, Any]:
    run = t.run
    assert run is not None
    row: dict[str, Any] = {
        **{name: getattr(run, name) for name in RUN_FIELDS},
        "path": str(t.path),
        "status": t.status,
        "turns": len(t.turns),
        "motion": run.motion,
    }
    end = t.end
    if end is not None:
        outcome = end.outcome
        row.update(
            winner=outcome.winner,
            loser=outcome.loser,
            outcome_reason=outcome.reason,
            outcome_rule=outcome.rule,
            outcome_turn=outcome.turn,
            matched=outcome.matched,
            votes=outcome.votes,
            duration_s=end.duration_s,
            prompt_tokens=end.totals.prompt_tokens,
            completion_tokens=end.totals.completion_tokens,
            retries=end.totals.retries,
            error_kind=end.error.kind if end.error else None,
            error_message=end.error.message if end.error else None,
        )
    return row


def _agent_rows(t: Transcript) -> Iterator[dict[str, Any]]:
    assert t.run is not None
    sides = {agent: side for side, agent in (t.run.sides or {}).items()}
    for position, agent in enumerate(t.run.agents):
        yield {
            "conversation_id": t.run.conversation_id,
            "scenario": t.run.scenario,
            "agent": agent.name,
            "position": position,
            "model": agent.model,
            "persona": agent.persona,
            "opening": agent.opening,
            "temperature": agent.options.get("temperature"),
            "backend": agent.backend,
            "side": sides.get(agent.name),
        }


def _phase_name(t: Transcript, index: int | None) -> str | None:
    if index is None:
        return None
    return next((p.name for p in t.phases if p.index == index), f"phase {index + 1}")


def _turn_rows(t: Transcript, joined: dict[str, Any]) -> Iterator[dict[str, Any]]:
    personas = {a.name: a.persona for a in t.run.agents} if t.run else {}
    for turn in t.turns:
        if turn.role == "moderator":
            continue  # the moderator is not a debater: its lines are no agent's turns
        yield {
            **joined,
            **{name: getattr(turn, name) for name in TURN_FIELDS},
            "phase_name": _phase_name(t, turn.phase),
            "persona": personas.get(turn.speaker),
            "seed_turn": turn.seed,
        }


def _moderator_rows(t: Transcript, cid: str) -> Iterator[dict[str, Any]]:
    for turn in t.turns:
        if turn.role == "moderator":
            yield {
                **{name: getattr(turn, name) for name in MODERATOR_COLUMNS[1:-1]},
                "conversation_id": cid,
                "phase_name": _phase_name(t, turn.phase),
            }


def _debate_rows(t: Transcript, cid: str, columns: list[str]) -> Iterator[dict[str, Any]]:
    records = t.phases if columns is PHASE_COLUMNS else t.votes
    for record in records:
        yield {**{name: getattr(record, name) for name in columns[1:]}, "conversation_id": cid}


def load_frames(
    paths: Iterable[str | Path],
    progress: Progress | None = None,
) -> Frames:
    """Read every transcript under ``paths`` (files or folders) into :class:`Frames`.

    A conversation found twice (the same file given twice, or a copy) counts once.
    Rows are in conversation-id order, then turn order, whatever order files came in.
    """
    conversations = _Columns(CONVERSATION_COLUMNS)
    agents = _Columns(AGENT_COLUMNS)
    turns = _Columns(TURN_COLUMNS)
    moderator = _Columns(MODERATOR_COLUMNS)
    phases = _Columns(PHASE_COLUMNS)
    votes = _Columns(VOTE_COLUMNS)
    skipped: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for t in iter_readable(report_paths(paths), skipped, progress):
        assert t.run is not None
        cid = t.run.conversation_id
        if cid in seen:
            continue
        seen[cid] = t.path
        row = _conversation_row(t)
        conversations.add(row)
        for agent_row in _agent_rows(t):
            agents.add(agent_row)
        joined = {name: row.get(name) for name in ("conversation_id", *JOINED)}
        for turn_row in _turn_rows(t, joined):
            turns.add(turn_row)
        for line in _moderator_rows(t, cid):
            moderator.add(line)
        for table, columns in ((phases, PHASE_COLUMNS), (votes, VOTE_COLUMNS)):
            for debate_row in _debate_rows(t, cid, columns):
                table.add(debate_row)
    return Frames(
        turns=_typed(turns.frame(), ["conversation_id", "index"]),
        conversations=_typed(conversations.frame(), ["conversation_id"]),
        agents=_typed(agents.frame(), ["conversation_id", "position"]),
        skipped=skipped,
        phases=_typed(phases.frame(), ["conversation_id", "index"]),
        moderator=_typed(moderator.frame(), ["conversation_id", "index"]),
        votes=votes.frame().sort_values(["conversation_id"], kind="stable").reset_index(drop=True),
    )


NUMERIC = {
    "float": "ttft_ms latency_ms duration_s temperature".split(),
    "Int64": (
        "seed base_seed repeat_index repeat turns outcome_turn prompt_tokens completion_tokens "
        "retries index round attempts seed_turn position phase first_turn"
    ).split(),
}


def _typed(frame: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Nullable integers stay integers (pandas would make a column with a gap float)."""
    for dtype, names in NUMERIC.items():
        for name in names:
            if name in frame.columns:
                frame[name] = frame[name].astype(dtype)
    if "scripted" in frame.columns:
        frame["scripted"] = frame["scripted"].astype(bool)
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def turns_frame(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per turn, with the conversation's scenario, seed, status and outcome."""
    return load_frames(paths).turns


def conversations_frame(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per conversation: scenario, seeds, status, outcome, totals."""
    return load_frames(paths).conversations
