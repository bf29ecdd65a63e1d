"""What a person sees in the terminal, one module per job: the live conversation
(:mod:`.live`), progress bars (:mod:`.progress`), summaries and plans (:mod:`.summary`),
transcripts (:mod:`.transcript`) and model lists (:mod:`.models`). This module holds what
they share.

Everything printed that came from a model, a server or a file passes through
:func:`runner.terminal.printable`, and is printed as rich ``Text``, never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from runner.terminal import printable

if TYPE_CHECKING:
    from runner.transcript.records import Outcome, RunRecord, TurnRecord

PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")
STATUS_STYLE = {"success": "green", "error": "red", "cancelled": "yellow"}


PIPED_WIDTH = 1_000_000  # columns for output that is not a terminal: lines are never wrapped


def console(file: object) -> Console:
    """A console that never reads markup or emoji codes in what it prints.

    Written to a file or a pipe, it never wraps: rich would wrap tables and text at 80
    columns (or $COLUMNS), cutting names and words in half for whoever reads the log.
    """
    out = Console(file=file, highlight=False, markup=False, emoji=False, soft_wrap=True)  # type: ignore[arg-type]
    if not out.is_terminal:
        out.width = PIPED_WIDTH
    return out


def speaker_style(names: Sequence[str], name: str) -> str:
    try:
        return PALETTE[list(names).index(name) % len(PALETTE)]
    except ValueError:
        return "white"


def safe(text: object, style: str = "") -> Text:
    return Text(printable(text), style=style)


def empty(record: TurnRecord) -> bool:
    """A generated turn without any visible text: a model's answer, but never a quiet one."""
    return not record.scripted and not record.content.strip()


def empty_note(record: TurnRecord) -> str:
    return f"empty reply: the model stopped before any text, done_reason {record.done_reason}"


JURY_RULES = {"moved": "votes moved", "after": "the vote after the debate"}


def describe_outcome(outcome: Outcome, status: str) -> str:
    if status in ("error", "cancelled"):
        return status
    if outcome.winner or outcome.loser:
        parts = []
        if outcome.winner:
            parts.append(f"{outcome.winner} wins")
        if outcome.loser:
            parts.append(f"{outcome.loser} loses")
        turn = outcome.turn
        if outcome.reason == "jury":
            return ", ".join(parts) + f" (the jury, by {JURY_RULES.get(outcome.rule or '', '')})"
        return ", ".join(parts) + (f" (turn {turn}: {outcome.rule})" if turn is not None else "")
    if outcome.reason == "end_rule":
        return f"draw ({outcome.rule})"
    if outcome.reason == "jury":
        return f"draw (the jury, by {JURY_RULES.get(outcome.rule or '', '')})"
    return {
        "max_turns": "turn limit reached",
        "agent_turn_limits": "every agent at its limit",
        "phases": "every phase played",
    }.get(outcome.reason, outcome.reason)


def _which(run: RunRecord) -> str:
    """What the seed derives from: a tournament game's id, else the repeat index."""
    return f"game {run.game_id}" if run.game_id else f"repeat #{run.repeat_index}"


def run_header(run: RunRecord, path: str) -> Text:
    return Text.assemble(
        safe(run.scenario, "bold"),
        safe(
            f"  {run.order}, up to {run.max_turns} turns, seed {run.seed} "
            f"(base seed {run.base_seed}, {_which(run)})"
        ),
        safe(f"\n{run.backend} at {run.host} ({run.backend_reason})"),
        ("\ntranscript: ", "dim"),
        safe(path, "dim"),
    )
