"""A run summed up: its conversations, the tally per agent, and the plan of a dry run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from runner.console import STATUS_STYLE, describe_outcome, safe

if TYPE_CHECKING:
    from runner.play.conversation import Result
    from runner.run.plan import RunPlan
    from runner.run.tally import Tally

SHOWN = 10  # conversations listed one by one in a summary; beyond, the tally speaks


def summary(
    out: Console,
    shown: Sequence[Result],
    tally: Tally,
    *,
    folder: Path | None = None,
    not_started: int = 0,
) -> None:
    """The conversations (one line each, up to a screenful) and the tally per agent.

    ``folder`` is where the transcripts went, as the user gave it; ``not_started`` counts
    planned conversations an interrupted run never began.
    """
    out.print(Text("summary", style="bold"))
    total = tally.conversations
    for r in shown:
        outcome = describe_outcome(r.outcome, r.status)
        if r.error:
            outcome += f": {r.error.message}"
        label = r.scenario if total + not_started == 1 else f"{r.scenario}#{r.repeat_index}"
        out.print(
            Text.assemble(
                safe(f"  {label}  "),
                (r.status, STATUS_STYLE.get(r.status, "")),
                safe(f"  {outcome}  ({r.turns} turns)\n    "),
                safe(r.path, "dim"),
            )
        )
    if len(shown) < total:
        where = "the transcripts folder" if folder is None else str(folder)
        out.print(safe(f"  ... {total - len(shown)} more in {where}", "dim"))
    if not_started > 0:
        noun = "conversation" if not_started == 1 else "conversations"
        out.print(safe(f"  {not_started} planned {noun} not started", "yellow"))
    if total > 1:
        tally_table(out, tally)


def tally_table(out: Console, tally: Tally) -> None:
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(tally.statuses.items()))
    out.print(Text(f"{tally.conversations} conversations: {statuses}; {tally.retries} retries"))
    table = Table(show_edge=False, pad_edge=False)
    for column in ("agent", "model", "wins", "losses", "draws", "concessions", "errors",
                   "turns", "tokens"):  # fmt: skip
        table.add_column(
            column,
            justify="left" if column in ("agent", "model") else "right",
            overflow="fold",  # names are shown whole, wrapped if they must be
        )
    for row in tally.rows.values():
        tokens = "unknown" if row.tokens is None else str(row.tokens)
        table.add_row(
            safe(row.agent), safe(row.model), str(row.wins), str(row.losses), str(row.draws),
            str(row.concessions), str(row.errors), str(row.turns), tokens,
        )  # fmt: skip
    out.print(table)


def print_plan(out: Console, run: RunPlan, max_conversations: int, listed: int = 10) -> None:
    """What a run would do: per scenario its engines and seeds, then the count."""
    for part in run.parts:
        scenario = part.scenario
        agents = ", ".join(
            f"{a.name}={a.model}@{part.models[a.name].choice.name}" for a in scenario.agents
        )
        out.print(
            safe(
                f"{scenario.name}: {scenario.repeat} conversation(s), base seed {part.base_seed}; "
                f"{agents}"
            )
        )
        for i in range(min(scenario.repeat, listed)):
            plan = part.plan(i)
            out.print(safe(f"  {scenario.name}#{i}: seed {plan.seed}"))
        if scenario.repeat > listed:
            out.print(Text(f"  ... and {scenario.repeat - listed} more", style="dim"))
    out.print(
        f"{len(run)} conversation(s) would run, at most {max_conversations} at once; "
        "nothing was sent to a model"
    )
