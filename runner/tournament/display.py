"""A tournament in the terminal: the plan, live progress, the summary and the tables."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from runner.console import safe
from runner.extras import REPORT_INSTALL
from runner.play.events import Retrying
from runner.terminal import printable
from runner.tournament.games import all_games, models
from runner.tournament.ledger import ResultRecord
from runner.tournament.play import Outcome, TournamentObserver
from runner.tournament.ratings import ENTRANT_FIELDS, Leaderboard
from runner.tournament.schedule import Scheduler, Work, load_lower_bound
from runner.tournament.spec import Tournament
from runner.tournament.standings import Status


def duration(seconds: float) -> str:
    """A time left, rounded to what is worth saying: 45 s, 12 min, 3.5 h."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(slots=True)
class Block:
    resident: list[str]
    loaded: list[str]
    evicted: list[str]
    games: int = 0
    judgings: int = 0


@dataclass(slots=True)
class Forecast:
    blocks: list[Block] = field(default_factory=list)
    loads: int = 0
    lower_bound: int = 0


def forecast(tournament: Tournament, capacity: int) -> Forecast:
    """The model blocks the scheduler will use for the whole tournament on one server,
    playing games one at a time (judging every game, when there is a judge)."""
    scheduler: Scheduler[object] = Scheduler(["server"], capacity)
    games = all_games(tournament)
    for game in games:
        scheduler.add(Work(game, models(tournament, game)))
    judge = tournament.judge
    plan = Forecast()
    resident: set[str] = set()
    while True:
        before = set(scheduler.hosts["server"].resident)
        work = scheduler.next("server")
        if work is None:
            break
        after = scheduler.hosts["server"].resident
        if after != before or not plan.blocks:
            plan.blocks.append(Block(sorted(after), sorted(after - before), sorted(before - after)))
        if work.judging:
            plan.blocks[-1].judgings += 1
        else:
            plan.blocks[-1].games += 1
            if judge is not None:
                scheduler.add(Work(None, frozenset({judge.model}), judging=True))
        scheduler.finished("server", work)
        resident = set(after)
    del resident
    plan.loads = scheduler.loads
    sets = [models(tournament, g) for g in games]
    plan.lower_bound = load_lower_bound(sets, capacity) + (1 if judge else 0)
    return plan


def print_plan(
    out: Console, tournament: Tournament, capacity: int, servers: list[str] | None = None
) -> None:
    games = all_games(tournament)
    seat_order = "both seat orders" if tournament.swap_seats else "one seat order"
    out.print(
        safe(
            f"{tournament.name}: {len(tournament.entrants)} entrants, {tournament.format}, "
            f"{tournament.games} game(s) per pairing and seat order ({seat_order}), seed "
            f"{tournament.seed}"
        )
    )
    first, second = tournament.seats
    out.print(
        safe(f"  seats: {first} (speaks first), {second}; scenario {tournament.scenario.name}")
    )
    scripted = sum(1 for a in tournament.scenario.agents if a.opening is not None)
    requests = len(games) * (tournament.scenario.max_turns - scripted)
    judge = f" + {2 * len(games)} judge requests at most" if tournament.judge else ""
    out.print(safe(f"  {len(games)} games, at most {requests} requests{judge}"))
    for line in servers or []:
        out.print(safe(f"  {line}"))
    plan = forecast(tournament, capacity)
    if capacity < 2:
        out.print(
            safe(
                "  one model loaded at once: the server loads a model for every turn; each "
                "pairing's games are played at once, so that one load serves all of them"
            )
        )
    out.print(safe(f"  model blocks with {capacity} model(s) loaded at once:"))
    for i, block in enumerate(plan.blocks, start=1):
        change = (
            f"+ {', '.join(block.loaded)}"
            + (f" (- {', '.join(block.evicted)})" if block.evicted else "")
            if i > 1
            else ", ".join(block.resident)
        )
        work = f"{block.games} game(s)" + (
            f", {block.judgings} judging(s)" if block.judgings else ""
        )
        out.print(safe(f"    {i:>2}. {change}: {work}"))
    if capacity >= 2:
        out.print(safe(f"  expected model loads: {plan.loads} (lower bound {plan.lower_bound})"))
    out.print("nothing was sent to a model")


class TournamentDisplay(TournamentObserver):
    """A live bar: games done of planned, errors, games per minute, ETA."""

    def __init__(self, err: Console, enabled: bool = True, out: Console | None = None) -> None:
        self.err = err
        self.out = out or err
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]games"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[errors]} errors, {task.fields[rate]}, {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=err,
            disable=not enabled,
        )
        self.task = self.progress.add_task(
            "games", total=0, errors=0, rate="- games/min", eta="ETA -"
        )
        self.started = time.monotonic()
        self.this_run = 0
        self.total = 0
        self.done = 0
        self.errors = 0

    def __enter__(self) -> TournamentDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def planned(self, total: int, done: int, errors: int) -> None:
        self.total, self.done, self.errors = total, done, errors
        self.progress.update(self.task, total=total, completed=done, errors=errors)

    def recorded(self, result: ResultRecord) -> None:
        self.done += 1
        self.this_run += 1
        self.errors += result.status == "error"
        minutes = (time.monotonic() - self.started) / 60
        rate = self.this_run / minutes if minutes > 0 else 0.0
        left = self.total - self.done
        eta = "done" if not left else f"ETA {duration(left / rate * 60)}" if rate > 0 else "ETA -"
        self.progress.update(
            self.task,
            completed=self.done,
            errors=self.errors,
            rate=f"{rate:.1f} games/min",
            eta=eta,
        )

    def retrying(self, event: Retrying) -> None:
        self.progress.console.print(
            safe(
                f"retrying {event.speaker} ({event.model}) in {event.wait:.1f}s: {event.message}",
                "dim yellow",
            )
        )

    def paused(self, host: str, message: str, wait: float) -> None:
        self.progress.console.print(
            safe(
                f"{host} is not answering ({message}); paused, asking again in {wait:.0f}s",
                "yellow",
            )
        )

    def resumed(self, host: str) -> None:
        self.progress.console.print(safe(f"{host} answers again; resuming", "green"))

    def scheduling(self, lines: list[str]) -> None:
        for line in lines:
            self.out.print(safe(line))


def print_summary(out: Console, outcome: Outcome, status: Status) -> None:
    recorded = len(outcome.recorded)
    out.print(Text("summary", style="bold"))
    out.print(
        safe(
            f"  {recorded} game(s) finished in this run; {status.done} of {status.planned} "
            f"planned are done, {status.errors} in error"
        )
    )
    decided = ", ".join(f"{n} by {k}" for k, n in sorted(status.by_decision.items()))
    if decided:
        out.print(safe(f"  decided: {decided}"))
    out.print(
        safe(f"  model loads: {outcome.loads} in this run, {status.server_loads} in all runs")
    )
    _server_lines(out, status)
    errors = [r for r in outcome.recorded if r.status == "error"][:10]
    for r in errors:
        out.print(safe(f"  error: {' vs '.join(r.seats.values())} #{r.number}: {r.error}", "red"))
    if outcome.stopped:
        out.print(safe(f"  stopped: {outcome.stopped}", "red"))


def rank_text(rank: int, tied: bool) -> str:
    """A rank as the table shows it: ``2=`` when another entrant shares it."""
    return f"{rank}=" if tied else str(rank)


def lost_text(errors: int, own: int, refused: int) -> str:
    """Games lost to errors: how many, how many on the entrant's own model, how many of
    those the server refused."""
    if not errors:
        return ""
    detail = [f"{own} own"] if own else []
    if refused:
        detail.append(f"{refused} refused")
    return f"{errors} ({', '.join(detail)})" if detail else str(errors)


def fits_text(board: Leaderboard) -> str | None:
    """Both fits' log-likelihoods, so that a reader can see which describes the games better."""
    ll = board.log_likelihood
    if not ll:
        return None
    nu = board.draw_parameter
    shown = "shown: " + ("draws as half a win" if board.draws == "half" else "Davidson")
    nu_text = "unbounded" if nu is not None and math.isinf(nu) else f"{nu:.2f}"
    return (
        f"log-likelihood (three outcomes; higher fits better): draws as half a win "
        f"{ll['half']:.1f}, Davidson tie model {ll['davidson']:.1f} (nu {nu_text}); {shown}"
    )


def leaderboard_table(out: Console, board: Leaderboard) -> None:
    lost = any(s.errors for s in board.entrants)
    columns = ["#", "entrant", "rating", "95% interval", "ranks", "games", "W", "D", "L"]
    columns += ["lost to errors"] * lost + ["tokens/reply"]
    table = Table(title="leaderboard", title_justify="left", show_edge=False)
    for column in columns:
        table.add_column(
            column, justify="left" if column == "entrant" else "right", overflow="fold"
        )
    for s in board.entrants:
        tokens = board.reply_tokens.get(s.name)
        ranks = str(s.rank) if s.rank == s.rank_worst else f"{s.rank}-{s.rank_worst}"
        interval = (
            f"{s.ci_low:.0f} - {s.ci_high:.0f}"
            if math.isfinite(s.ci_low) and math.isfinite(s.ci_high)
            else "-"
        )
        cells: list[str | Text] = [
            rank_text(s.rank, s.tied), safe(s.name), f"{s.rating:.0f}", interval, ranks,
            str(s.games), str(s.wins), str(s.draws), str(s.losses),
        ]  # fmt: skip
        if lost:
            cells.append(lost_text(s.errors, s.own_errors, s.refusals))
        cells.append("" if tokens is None else f"{tokens:.0f}")
        table.add_row(*cells)
    out.print(table)
    seat = board.seat_advantage
    first = board.first_seat_score
    if board.games:
        out.print(
            safe(
                f"first seat: {seat['rating']:+.0f} rating points ({seat['ci_low']:+.0f} to "
                f"{seat['ci_high']:+.0f}); it scored {first['mean']:.2f} per game "
                f"({first['ci_low']:.2f} - {first['ci_high']:.2f}; a draw is 0.5)"
            )
        )
    fits = fits_text(board)
    if fits:
        out.print(safe(fits))
    if board.sides is not None:
        _sides(out, board)
    if board.excluded:
        out.print(safe(f"not counted: {', '.join(f'{n} {k}' for k, n in board.excluded.items())}"))
    out.print(
        Text(
            f"{board.games} games; {board.method}; ranks: 1 + entrants whose interval lies "
            "wholly above (the range: the ranks the intervals allow); = marks a shared rank",
            style="dim",
        )
    )


def _sides(out: Console, board: Leaderboard) -> None:
    """The side advantage, then the results per motion."""
    sides = board.sides
    assert sides is not None
    rates = "; ".join(
        f"{side} won {sides[side]['wins']} ({sides[side]['win_rate']:.0%}, "
        f"{sides[side]['ci_low']:.0%} - {sides[side]['ci_high']:.0%})"
        for side in ("proposition", "opposition")
    )
    out.print(safe(f"sides: of {sides['games']} games, {rates}; {sides['draws']} drawn"))
    if board.motions:
        table = Table(title="by motion", title_justify="left", show_edge=False)
        for column in ("motion", "games", "proposition", "opposition", "draws"):
            table.add_column(column, justify="left" if column == "motion" else "right")
        for row in board.motions:
            table.add_row(
                safe(row["motion"]), str(row["games"]), str(row["proposition"]),
                str(row["opposition"]), str(row["draws"]),
            )  # fmt: skip
        out.print(table)


def leaderboard_text(board: Leaderboard, fmt: str) -> str:
    """The leaderboard as JSON or CSV, for scripts."""
    data = board.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2, allow_nan=False)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ENTRANT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in data["entrants"]:
        writer.writerow({k: printable(v) if isinstance(v, str) else v for k, v in row.items()})
    return buffer.getvalue()


def status_text(out: Console, status: Status) -> None:
    running = f"running (pid {status.running})" if status.running else "not running"
    out.print(safe(f"{status.name}  {running}  {status.hash[:19]}"))
    out.print(
        safe(
            f"  games: {status.done}/{status.planned} done, {status.errors} in error, "
            f"{status.planned - status.done} to go"
        )
    )
    if status.rate_per_min:
        eta = f"; ETA {duration(status.eta_s)}" if status.eta_s else ""
        out.print(safe(f"  rate: {status.rate_per_min:.1f} games/min lately{eta}"))
    if status.by_decision:
        out.print(
            safe(
                "  decided: "
                + ", ".join(f"{n} by {k}" for k, n in sorted(status.by_decision.items()))
            )
        )
    out.print(safe(f"  judged: {status.judged}; model loads: {status.server_loads}"))
    _server_lines(out, status)
    for line in judges_lines(status.judges):
        out.print(safe(line))
    if status.judged and status.judges is None:
        out.print(f"  the judges' reliability needs the report extra: {REPORT_INSTALL}")


def _share(rate: dict[str, Any]) -> str:
    """``9 of 22 (41%, 95% 23-61%)`` from a counted rate."""
    if not rate["of"]:
        return "0 of 0"
    return (
        f"{rate['count']} of {rate['of']} ({100 * rate['rate']:.0f}%, 95% "
        f"{100 * rate['ci_low']:.0f}-{100 * rate['ci_high']:.0f}%)"
    )


def judges_lines(report: dict[str, Any] | None) -> list[str]:
    """The judges' reliability, a few lines per judge."""
    if report is None:
        return []
    lines = []
    for j in report["judges"]:
        alpha = j["order_alpha"]
        own = j["self_judged"]
        lines += [
            f"  judge {j['model']}: {j['games']} games, {j['verdicts']} verdicts, "
            f"{j['abstentions']} without a valid verdict",
            f"    verdict flips when the order flips: {_share(j['order_flips'])} of the games "
            "judged in both orders; agreement of the orders (Krippendorff's alpha): "
            + ("-" if alpha is None else f"{alpha:.2f}"),
            f"    Speaker 1 named in {_share(j['speaker_1'])} of decisive verdicts",
        ]
        if own["games"]:
            lines.append(
                f"    judged its own model in {own['games']} games: "
                f"{own['verdicts_for_own_model']} verdicts for it, "
                f"{own['verdicts_against_own_model']} against"
            )
    between = report["between_judges"]
    if between is not None:
        alpha = between["alpha"]
        lines.append(
            f"  judges unanimous on {_share(between['unanimous'])} of the games several "
            "decided; alpha " + ("-" if alpha is None else f"{alpha:.2f}")
        )
    return lines


def _server_lines(out: Console, status: Status) -> None:
    """Per server: what it holds and how that was learned; its loads against the bound."""
    for server in status.servers:
        out.print(safe(f"  server {server.capacity.server}: {server.says}"))
        bound = ""
        if server.lower_bound is not None:
            holds = server.capacity.holds or server.capacity.at_least
            bound = f" (lower bound {server.lower_bound} on a server holding {holds}"
            if server.bound_from_turns:
                bound += ", from the turns played so far"
            bound += ")"
        out.print(safe(f"    model loads: {server.capacity.loads}{bound}"))
