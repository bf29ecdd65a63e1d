"""A tournament folder read back: progress (``status``) and ratings (``leaderboard``),
from disk alone, also while another process is running the tournament."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from runner import files
from runner.tournament.capacity import Capacity, read_learned
from runner.tournament.ledger import LOCK, ResultRecord, read_results
from runner.tournament.ratings import ROUNDS, Decided, Draws, Leaderboard, leaderboard
from runner.tournament.schedule import load_lower_bound, turn_lower_bound
from runner.tournament.sides import per_motion, side_advantage


@dataclass(slots=True)
class Server:
    """What a server was learned to hold, and the loads it made for the tournament."""

    capacity: Capacity
    says: str  # what it holds, and how that was learned, in a line
    lower_bound: int | None  # fewest loads of the whole tournament on one such server
    bound_from_turns: bool = False  # a server holding one model: from the turns played

    def to_dict(self) -> dict[str, Any]:
        learned = self.capacity.to_dict()
        return {
            "server": learned.pop("server"),
            "says": self.says,
            **learned,
            "lower_bound": self.lower_bound,
            "lower_bound_from_turns": self.bound_from_turns,
        }


@dataclass(slots=True)
class Status:
    name: str
    hash: str
    planned: int
    done: int
    errors: int
    judged: int
    loads: int
    running: str | None  # the pid holding the folder, if any
    rate_per_min: float | None  # over the most recent results
    eta_s: float | None
    by_decision: dict[str, int] = field(default_factory=dict)
    judges: dict[str, Any] | None = None  # the judges' reliability (reliability.py)
    servers: list[Server] = field(default_factory=list)

    @property
    def server_loads(self) -> int:
        """Loads the servers made, preloads included; the replies' count where unknown."""
        return sum(s.capacity.loads for s in self.servers) if self.servers else self.loads

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.hash,
            "planned": self.planned,
            "done": self.done,
            "remaining": self.planned - self.done,
            "errors": self.errors,
            "judged": self.judged,
            "decided_by": self.by_decision,
            "model_loads": self.server_loads,
            "servers": [s.to_dict() for s in self.servers],
            "running": self.running,
            "games_per_minute": None if self.rate_per_min is None else round(self.rate_per_min, 2),
            "eta_s": None if self.eta_s is None else round(self.eta_s),
            "judges": self.judges,
        }


def holder(folder: Path) -> str | None:
    """The pid running the tournament in ``folder``, or None when nobody holds its lock."""
    path = folder / LOCK
    if not files.held(path):
        return None
    return path.read_text(encoding="utf-8").strip() or "?"


def _rate(results: list[ResultRecord], window: int = 20) -> float | None:
    stamps = sorted(
        datetime.fromisoformat(r.finished_at.replace("Z", "+00:00"))
        for r in results
        if r.finished_at
    )[-window:]
    if len(stamps) < 2:
        return None
    minutes = (stamps[-1] - stamps[0]).total_seconds() / 60
    return (len(stamps) - 1) / minutes if minutes > 0 else None


def status(folder: Path) -> Status:
    definition, results = read_results(folder)
    planned = len(definition.get("games", []))
    rate = _rate(results)
    remaining = planned - len(results)
    by_decision: dict[str, int] = {}
    for r in results:
        by_decision[r.decided_by] = by_decision.get(r.decided_by, 0) + 1
    return Status(
        name=definition.get("name", "?"),
        hash=definition.get("hash", "?"),
        planned=planned,
        done=len(results),
        errors=sum(1 for r in results if r.status == "error"),
        judged=sum(1 for r in results if r.judge),
        loads=sum(r.loads for r in results),
        running=holder(folder),
        rate_per_min=rate,
        eta_s=remaining / rate * 60 if rate and remaining else None,
        by_decision=by_decision,
        judges=judges(definition, results),
        servers=servers(folder, definition, results),
    )


def entrant_models(definition: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["model"] for e in definition["definition"]["entrants"]}


def judges(definition: dict[str, Any], results: list[ResultRecord]) -> dict[str, Any] | None:
    """The judges' reliability over the results so far (None: nothing judged yet, or the
    report extra, which computes it, is not installed)."""
    from runner import extras

    if extras.missing():
        return None
    from runner.tournament.reliability import judge_reliability

    return judge_reliability(results, definition["seats"], entrant_models(definition))


def servers(folder: Path, definition: dict[str, Any], results: list[ResultRecord]) -> list[Server]:
    """What each server of the folder's runs was learned to hold, with the lower bound on
    loads for a server holding that many."""
    entrants = {e["name"]: e["model"] for e in definition["definition"]["entrants"]}
    sets = [frozenset(entrants[name] for name in g["seats"]) for g in definition["games"]]
    judge = definition["definition"].get("judge")
    count = len(set(entrants.values()) | ({judge["model"]} if judge else set()))
    found = []
    for capacity in read_learned(folder).values():
        holds = capacity.holds
        if holds is None and capacity.at_least >= count:
            holds = capacity.at_least  # all of them fit at once
        bound, from_turns = None, False
        if holds is not None and holds >= 2:
            bound = load_lower_bound(sets, holds)
        elif holds == 1:
            bound, from_turns = turn_lower_bound(played_turns(results, entrants)), True
        if bound is not None and judge:
            bound += 1
        found.append(Server(capacity, capacity.describe(count), bound, from_turns))
    return found


def played_turns(
    results: list[ResultRecord], entrants: dict[str, str]
) -> list[tuple[frozenset[str], str | None, int]]:
    """Each game's models, the model of its first generated turn (None: not known), and its
    generated turns, for the games whose turns alternate between their two models (older
    ledgers do not say: their games count as alternating, who opened not known): what the
    bound on a one-model server reads. Other games leave it a bound on fewer games."""
    return [
        (
            frozenset(entrants[n] for n in r.seats.values()),
            entrants.get(r.first_reply or "") if r.alternates else None,
            sum(r.replies.values()),
        )
        for r in results
        if r.alternates is not False
    ]


def decided(results: list[ResultRecord], seats: list[str]) -> tuple[list[Decided], dict[str, int]]:
    """Games that count for ratings (a draw is half a win each), and the others by reason."""
    games: list[Decided] = []
    excluded: dict[str, int] = {}
    for r in results:
        if r.status != "success":
            excluded["error"] = excluded.get("error", 0) + 1
            continue
        first, second = r.seats[seats[0]], r.seats[seats[1]]
        score = 0.5 if r.draw or r.winner is None else 1.0 if r.winner == first else 0.0
        games.append(Decided(first, second, score))
    return games, excluded


REFUSED = {"bad_request"}  # the server refused the request (a 4xx: malformed, too long, filtered)


@dataclass(slots=True)
class Lost:
    """Games an entrant sat in that ended in error, and so are not rated."""

    errors: int = 0
    own: int = 0  # the failing request was to its own model
    refused: int = 0  # of those, the server refused it


def lost_games(results: list[ResultRecord], models: dict[str, str]) -> dict[str, Lost]:
    """Per entrant, the games lost to errors; ``models`` maps entrant to model. An error
    is its own when the request that failed went to its model (both entrants', when they
    share the model)."""
    lost: dict[str, Lost] = {}
    for r in results:
        if r.status == "success":
            continue
        for name in r.seats.values():
            entry = lost.setdefault(name, Lost())
            entry.errors += 1
            if r.error_model is not None and models.get(name) == r.error_model:
                entry.own += 1
                entry.refused += r.error_kind in REFUSED
    return lost


def folder_leaderboard(
    folder: Path, *, rounds: int = ROUNDS, seed: int | None = None, draws: Draws = "half"
) -> Leaderboard:
    """Ratings of the results so far; the bootstrap is seeded with the tournament's seed."""
    definition, results = read_results(folder)
    names = [e["name"] for e in definition["definition"]["entrants"]]
    games, excluded = decided(results, definition["seats"])
    board = leaderboard(
        games,
        names,
        rounds=rounds,
        seed=definition["definition"]["seed"] if seed is None else seed,
        draws=draws,
        excluded=excluded,
    )
    _reply_lengths(board, results)
    board.judges = judges(definition, results)
    lost = lost_games(results, entrant_models(definition))
    for s in board.entrants:
        if s.name in lost:
            s.errors, s.own_errors, s.refusals = (
                lost[s.name].errors,
                lost[s.name].own,
                lost[s.name].refused,
            )
    board.sides = side_advantage(results)
    board.motions = per_motion(results)
    return board


def _reply_lengths(board: Leaderboard, results: list[ResultRecord]) -> None:
    """Mean reply tokens per entrant beside its rating: judges favour long answers."""
    replies: dict[str, int] = {}
    tokens: dict[str, int] = {}
    for r in results:
        for name, n in r.replies.items():
            replies[name] = replies.get(name, 0) + n
        for name, n in r.reply_tokens.items():
            tokens[name] = tokens.get(name, 0) + n
    board.reply_tokens = {
        name: tokens.get(name, 0) / replies[name] for name in replies if replies[name]
    }
