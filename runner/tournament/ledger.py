"""A tournament's folder: its definition, its games' transcripts, and exactly-once results.

    DIR/tournament.json    the resolved tournament and its hash
    DIR/results.jsonl      one line per finished game (the last line for a game counts)
    DIR/games/*.jsonl      one transcript per game (verdicts appended after the end line)
    DIR/aside/             transcripts of interrupted games: kept, never counted
    DIR/.lock              held while a process runs the tournament

A game counts once it has its results line. On every start the folder is reconciled with
the plan: a cut-off last results line is cut away; a transcript without an ``end`` line
(killed, or Ctrl-C) is moved aside and its game played again with the same seed; a
transcript that ended but has no results line gets its line from the transcript, without
playing it again. Results lines are written whole, flushed and fsync'd.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.errors import SparringError
from runner import files
from runner.play.recorder import now_iso
from runner.tournament.games import Game, all_games, seat_names
from runner.tournament.spec import Tournament
from runner.transcript import Transcript, TurnRecord, VerdictRecord, iter_transcripts, slug
from runner.transcript.reader import TOURNAMENT_ASIDE, TOURNAMENT_DEFINITION, TOURNAMENT_RESULTS

log = structlog.get_logger("sparring.tournament")

# The reader leaves the folder's results and aside/ out of its transcripts: one spelling.
DEFINITION, RESULTS, GAMES, ASIDE, LOCK = (
    TOURNAMENT_DEFINITION,
    TOURNAMENT_RESULTS,
    "games",
    TOURNAMENT_ASIDE,
    ".lock",
)
DecidedBy = Literal["end_rule", "jury", "judge", "max_turns", "error"]


class LedgerError(SparringError):
    """The folder cannot be used for this tournament (locked, or holding another one)."""


class ResultRecord(BaseModel):
    """One finished game."""

    model_config = ConfigDict(frozen=True, extra="allow")

    type: Literal["result"] = "result"
    game_id: str
    tournament_hash: str
    pairing: list[str] = Field(description="the two entrants, sorted")
    seats: dict[str, str] = Field(description="seat (the scenario's agent) -> entrant")
    number: int = 0
    seed: int
    status: Literal["success", "error"]
    winner: str | None = None
    loser: str | None = None
    draw: bool = False
    decided_by: DecidedBy
    judge: list[VerdictRecord] | None = None
    motion: str | None = Field(None, description="the motion debated, if the scenario has motions")
    sides: dict[str, str] | None = Field(
        None, description="side (proposition, opposition) -> entrant, if the scenario has sides"
    )
    transcript: str = Field(description="path relative to the tournament folder")
    turns: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float = 0.0
    duration_s: float | None = None
    loads: int = Field(0, description="model loads the server reported during the game")
    replies: dict[str, int] = Field(default_factory=dict, description="generated turns per entrant")
    first_reply: str | None = Field(None, description="who generated the game's first turn")
    alternates: bool | None = Field(
        None, description="its generated turns alternate between its entrants' two models"
    )
    reply_tokens: dict[str, int] = Field(
        default_factory=dict, description="completion tokens per entrant, where reported"
    )
    error: str | None = None
    # Older ledgers lack these two: their errors count for both seats, cause unknown.
    error_kind: str | None = Field(None, description="unavailable, timeout, bad_request, ...")
    error_model: str | None = Field(None, description="the model whose request failed")
    finished_at: str = ""


LOAD_MS = 50.0  # a reply whose load_ms reaches this loaded its model first


def loads_in(transcript: Transcript) -> int:
    return sum(1 for t in transcript.turns if t.server.get("load_ms", 0.0) >= LOAD_MS)


def result_from(
    tournament: Tournament, game: Game, transcript: Transcript, folder: Path
) -> ResultRecord:
    """The results line a finished game's transcript (and its verdicts) amount to."""
    end = transcript.end
    assert end is not None and end.status in ("success", "error")
    outcome = end.outcome
    decided: DecidedBy
    winner, loser, draw = outcome.winner, outcome.loser, False
    if end.status == "error":
        decided, winner, loser = "error", None, None
    elif outcome.reason == "end_rule":
        decided, draw = "end_rule", winner is None and loser is None
    elif outcome.reason == "jury":  # the scenario's own jury voted the debate
        decided, draw = "jury", winner is None
    else:
        decided, draw = "max_turns", True
    verdicts = transcript.verdicts or None
    if end.status == "success" and verdicts and tournament.judge is not None:
        decision = judge_decision(verdicts, game)
        if decision is not None and (tournament.judge.when == "always" or decided == "max_turns"):
            decided = "judge"
            winner, loser, draw = decision
    totals = end.totals
    return ResultRecord(
        game_id=game.id,
        tournament_hash=tournament.hash,
        pairing=list(game.pairing),
        seats=seat_names(tournament, game),
        number=game.number,
        seed=game.seed,
        status=end.status,
        winner=winner,
        loser=loser,
        draw=draw,
        decided_by=decided,
        judge=verdicts,
        motion=transcript.run.motion if transcript.run else None,
        sides=transcript.run.sides if transcript.run else None,
        transcript=str(transcript.path.relative_to(folder)),
        turns=end.turns,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        latency_ms=totals.latency_ms,
        duration_s=end.duration_s,
        loads=loads_in(transcript),
        replies=_count_by_speaker(transcript, lambda t: 1),
        first_reply=next((t.speaker for t in transcript.turns if not t.scripted), None),
        alternates=alternates(transcript, set(game.seats)),
        reply_tokens=_count_by_speaker(transcript, lambda t: t.completion_tokens or 0),
        error=end.error.message if end.error else None,
        error_kind=end.error.kind if end.error else None,
        error_model=end.error.model if end.error else None,
        finished_at=now_iso(),
    )


def alternates(transcript: Transcript, entrants: set[str]) -> bool:
    """Whether a game's requests went to its two entrants' models in turn and nothing else
    asked a model (no chair, no jury): what the bound for a one-model server assumes."""
    generated = [t for t in transcript.turns if not t.scripted]
    if transcript.votes or any(t.speaker not in entrants for t in generated):
        return False
    return all(a.model != b.model for a, b in itertools.pairwise(generated))


def _count_by_speaker(transcript: Transcript, value: Callable[[TurnRecord], int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for turn in transcript.turns:
        if not turn.scripted:
            counts[turn.speaker] = counts.get(turn.speaker, 0) + value(turn)
    return counts


def judge_decision(
    verdicts: Iterable[VerdictRecord], game: Game
) -> tuple[str | None, str | None, bool] | None:
    """(winner, loser, draw) from both orders' verdicts: agreement decides, disagreement is a
    draw; None when either order has no valid verdict (never guessed)."""
    named: dict[str, str | None] = {}
    for verdict in verdicts:
        if verdict.winner is None:
            return None
        named[verdict.order] = verdict.speaker if verdict.winner != "draw" else "draw"
    if set(named) != {"as_seated", "swapped"}:
        return None
    first, second = named["as_seated"], named["swapped"]
    if first != second or first in (None, "draw"):
        return None, None, True
    loser = next(name for name in game.seats if name != first)
    return first, loser, False


@dataclass
class Reconciled:
    """What a start found in the folder."""

    finalized: list[ResultRecord] = field(default_factory=list)  # results made from transcripts
    to_judge: list[tuple[Game, Transcript]] = field(default_factory=list)
    moved_aside: list[Path] = field(default_factory=list)


class Ledger:
    def __init__(self, folder: Path, tournament: Tournament) -> None:
        self.folder = folder
        self.tournament = tournament
        self.games = {g.id: g for g in all_games(tournament)}
        self.results: dict[str, ResultRecord] = {}
        self._lock_fd: int | None = None

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: Path, tournament: Tournament, *, accept_changes: bool = False) -> Ledger:
        """Lock the folder for this process and check it holds this tournament."""
        ledger = cls(folder, tournament)
        try:
            (folder / GAMES).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"{folder}: cannot use this folder: {exc.strerror}") from None
        ledger._lock()
        try:
            ledger._check_definition(accept_changes)
            ledger._read_results()
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _lock(self) -> None:
        path = self.folder / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not files.lock(fd):
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LedgerError(
                f"{self.folder}: this tournament is already running (pid {holder}); "
                "`sparring tournament status` shows its progress"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # also releases the lock
            self._lock_fd = None

    def _check_definition(self, accept_changes: bool) -> None:
        path = self.folder / DEFINITION
        current = definition_file(self.tournament)
        if path.exists():
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise LedgerError(f"{path}: unreadable: {exc}") from None
            if stored.get("hash") == current["hash"]:
                return
            if not accept_changes:
                raise LedgerError(
                    f"{self.folder} holds another version of this tournament (its file changed "
                    f"since: {stored.get('hash', '?')[:19]} vs {current['hash'][:19]}); pass "
                    "--accept-changes to go on with the new version (games it still has keep "
                    "their results), or use another --out"
                )
            old = self.folder / f"tournament.{str(stored.get('hash', 'old'))[7:19]}.json"
            path.replace(old)
            log.warning("tournament changed", kept_as=str(old))
        files.write_whole(path, json.dumps(current, indent=2) + "\n")

    def _read_results(self) -> None:
        path = self.folder / RESULTS
        if not path.exists():
            return
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        complete = raw.endswith(b"\n")
        if not complete:
            # Killed mid-line: cut the partial line away before anything is appended.
            with path.open("r+b") as f:
                f.truncate(len(raw) - len(lines[-1]))
            lines = lines[:-1]
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = ResultRecord.model_validate_json(line)
            except ValidationError as exc:
                raise LedgerError(
                    f"{path}:{number}: not a results line: {exc.errors()[0]['msg']}"
                ) from None
            if record.game_id in self.games:
                self.results[record.game_id] = record  # the last line for a game counts

    # -- state ---------------------------------------------------------------------------

    def pending(self, retry_errors: bool = False) -> list[Game]:
        """Planned games without a results line (or with an error, when retrying errors)."""
        return [
            g
            for g in self.games.values()
            if g.id not in self.results or (retry_errors and self.results[g.id].status == "error")
        ]

    def reconcile(self, retry_errors: bool = False) -> Reconciled:
        """Bring results in line with the transcripts on disk (see the module docstring)."""
        found = Reconciled()
        pending = {g.id for g in self.pending(retry_errors)}
        for transcript in iter_transcripts([self.folder / GAMES], skip_unreadable=True):
            run = transcript.run
            gid = run.game_id if run else None
            if gid is None or gid not in pending:
                if run is None:
                    found.moved_aside.append(self.aside(transcript.path))
                continue
            if transcript.end is None or transcript.end.status == "cancelled":
                found.moved_aside.append(self.aside(transcript.path))
                continue
            if retry_errors and transcript.end.status == "error":
                found.moved_aside.append(self.aside(transcript.path))
                continue
            game = self.games[gid]
            if self.needs_judging(transcript):
                found.to_judge.append((game, transcript))
                continue
            result = result_from(self.tournament, game, transcript, self.folder)
            self.record(result)
            found.finalized.append(result)
            pending.discard(gid)
        return found

    def needs_judging(self, transcript: Transcript) -> bool:
        judge = self.tournament.judge
        end = transcript.end
        if judge is None or end is None or end.status != "success":
            return False
        if judge.when == "undecided" and end.outcome.reason == "end_rule":
            return False
        return {v.order for v in transcript.verdicts} != {"as_seated", "swapped"}

    # -- writing -------------------------------------------------------------------------

    def transcript_stem(self, game: Game) -> str:
        first, second = (slug(name, 24) for name in game.seats)
        return f"{first}-vs-{second}_{game.number:02d}_{game.id}"

    def aside(self, path: Path) -> Path:
        """Move an interrupted game's transcript out of the way; it is kept, never counted."""
        target_dir = self.folder / ASIDE
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        n = 1
        while target.exists():
            target = target_dir / f"{path.stem}-{n}{path.suffix}"
            n += 1
        shutil.move(str(path), target)
        log.info("transcript moved aside", transcript=str(path), to=str(target))
        return target

    def record(self, result: ResultRecord) -> None:
        """Append one results line: whole, flushed and on disk before this returns."""
        line = result.model_dump_json().encode() + b"\n"
        fd = os.open(self.folder / RESULTS, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.results[result.game_id] = result


def definition_file(tournament: Tournament) -> dict[str, Any]:
    games = all_games(tournament)
    return {
        "name": tournament.name,
        "description": tournament.description,
        "source": tournament.source,
        "hash": tournament.hash,
        "seats": list(tournament.seats),
        "definition": tournament.definition(),
        "games": [
            {"id": g.id, "seats": list(g.seats), "number": g.number, "seed": g.seed} for g in games
        ],
        "written_at": now_iso(),
    }


def read_results(folder: Path) -> tuple[dict[str, Any], list[ResultRecord]]:
    """A tournament folder's definition and counted results, without locking it (status,
    leaderboard: also while a run is going on)."""
    definition_path = folder / DEFINITION
    try:
        definition = json.loads(definition_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LedgerError(f"{folder}: not a tournament folder (no {DEFINITION})") from None
    except (OSError, ValueError) as exc:
        raise LedgerError(f"{definition_path}: unreadable: {exc}") from None
    planned = {g["id"] for g in definition.get("games", [])}
    results: dict[str, ResultRecord] = {}
    path = folder / RESULTS
    if path.exists():
        for line in path.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                record = ResultRecord.model_validate_json(line)
            except ValidationError:
                continue  # a line being written right now
            if record.game_id in planned:
                results[record.game_id] = record
    return definition, list(results.values())
