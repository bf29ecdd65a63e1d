"""What a person sees in the terminal: live turns, progress, summaries, transcripts.

Everything printed that came from a model, a server or a file passes through
:func:`runner.terminal.printable`, and is printed as rich ``Text``, never as markup.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agents.backends.base import ModelInfo
from runner.conversation import Result
from runner.events import (
    ConversationFinished,
    ConversationStarted,
    Observer,
    Retrying,
    TextDelta,
    TurnFinished,
    TurnStarted,
)
from runner.plan import RunPlan
from runner.tally import Tally
from runner.terminal import printable
from runner.transcript import EndRecord, Outcome, RunRecord, Transcript, TurnRecord

PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")
STATUS_STYLE = {"success": "green", "error": "red", "cancelled": "yellow"}
SHOWN = 10  # conversations listed one by one in a summary; beyond, the tally speaks


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


class LiveObserver(Observer):
    """Streams one conversation's turns as they are generated.

    In simultaneous rounds several agents speak at once, so their turns are printed
    whole when they finish instead of token by token.
    """

    def __init__(self, out: Console) -> None:
        self.console = out
        self.streaming = True
        self.names: list[str] = []
        self._open_line = False
        self._fresh = True

    def conversation_started(self, event: ConversationStarted) -> None:
        run = event.run
        self.streaming = run.order != "simultaneous"
        self.names = [a.name for a in run.agents]
        self.console.print(run_header(run, str(event.path)))
        for agent in run.agents:
            style = speaker_style(self.names, agent.name)
            self.console.print(
                Text.assemble(safe("  " + agent.name, style), safe(f"  {agent.model}"))
            )
        self.console.print()

    def _header(self, speaker: str, model: str, scripted: bool) -> Text:
        return Text.assemble(
            safe(speaker, f"bold {speaker_style(self.names, speaker)}"),
            safe(f" ({model}{', scripted' if scripted else ''})", "dim"),
            ": ",
        )

    def turn_started(self, event: TurnStarted) -> None:
        if self.streaming:
            self.console.print(self._header(event.speaker, event.model, event.scripted), end="")
            self._open_line = True
            self._fresh = True

    def delta(self, event: TextDelta) -> None:
        if not self.streaming:
            return
        text = event.text
        if self._fresh:  # replies often open with a space or newline; the label has one
            text = text.lstrip()
            self._fresh = not text
        self.console.print(safe(text, speaker_style(self.names, event.speaker)), end="")

    def retrying(self, event: Retrying) -> None:
        if self.streaming:
            # The half-streamed attempt is abandoned: say so on a line of its own.
            self.console.print()
            self.console.print(
                safe(f"  [{event.message}; retrying in {event.wait:.1f}s]", "dim yellow")
            )
            self.console.print(self._header(event.speaker, event.model, False), end="")
            self._fresh = True

    def turn_finished(self, event: TurnFinished) -> None:
        record = event.record
        if self.streaming:
            if empty(record):
                self.console.print(safe(f"({empty_note(record)})", "dim yellow"), end="")
            self.console.print()
            self._open_line = False
            return
        self.console.print(
            self._header(record.speaker, record.model, record.scripted),
            safe(record.content.strip(), speaker_style(self.names, record.speaker)),
            Text(f"  [round {record.round}]", style="dim"),
        )

    def conversation_finished(self, event: ConversationFinished) -> None:
        if self._open_line:  # a reply left unfinished: say why, not a bare speaker label
            self.console.print(safe(f"({describe_cut(event.end)})", "dim yellow"))
            self._open_line = False
        self.console.print()


def describe_cut(end: EndRecord) -> str:
    """Why a turn being streamed never finished, from its conversation's end line."""
    if end.status == "cancelled":
        return "cut off: interrupted"
    kind = f" ({end.error.kind})" if end.error is not None else ""
    return f"cut off: {end.status}{kind}"


class ProgressObserver(Observer):
    """A progress bar over many conversations: conversations and turns done, ETA, retries."""

    def __init__(self, err: Console, total: int, max_turns: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "{task.fields[turns]}/{task.fields[max_turns]} turns at most, "
                "{task.fields[errors]} errors, {task.fields[eta]}"
            ),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self.total = total
        self.task = self.progress.add_task(
            "conversations", total=total, turns=0, max_turns=max_turns, errors=0, eta="ETA -"
        )
        self.turns = 0
        self.errors = 0
        self.done = 0
        self.started = time.monotonic()

    def __enter__(self) -> ProgressObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def turn_finished(self, event: TurnFinished) -> None:
        self.turns += 1
        self.progress.update(self.task, turns=self.turns)
        record = event.record
        if empty(record):
            self.progress.console.print(
                safe(f"{record.speaker} ({record.model}), turn {record.index}: "
                     f"{empty_note(record)}", "dim yellow")
            )  # fmt: skip

    def retrying(self, event: Retrying) -> None:
        self.progress.console.print(
            safe(
                f"retrying {event.speaker} ({event.model}) in {event.wait:.1f}s: {event.message}",
                "dim yellow",
            )
        )

    def conversation_finished(self, event: ConversationFinished) -> None:
        self.done += 1
        if event.end.status == "error":
            self.errors += 1
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        eta = f"ETA {_duration(left)}" if self.done < self.total else "done"
        self.progress.update(self.task, advance=1, errors=self.errors, eta=eta)


def empty(record: TurnRecord) -> bool:
    """A generated turn without any visible text: a model's answer, but never a quiet one."""
    return not record.scripted and not record.content.strip()


def empty_note(record: TurnRecord) -> str:
    return f"empty reply: the model stopped before any text, done_reason {record.done_reason}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class PullProgress:
    """Prints a pull's progress. ollama reports many times a second: this shows status
    changes and 10% steps only."""

    def __init__(self, err: Console) -> None:
        self.console = err
        self.shown: dict[str, tuple[str, int]] = {}

    def __call__(self, model: str, status: str, done: int | None, total: int | None) -> None:
        percent = int(100 * done / total) if done is not None and total else -1
        step = (status, percent // 10)
        if self.shown.get(model) == step:
            return
        self.shown[model] = step
        self.console.print(
            safe(f"pulling {model}: {status}" + (f" {percent}%" if percent >= 0 else ""))
        )


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
        return ", ".join(parts) + (f" (turn {turn}: {outcome.rule})" if turn is not None else "")
    if outcome.reason == "end_rule":
        return f"draw ({outcome.rule})"
    return {"max_turns": "turn limit reached", "agent_turn_limits": "every agent at its limit"}.get(
        outcome.reason, outcome.reason
    )


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


def models_table(out: Console, backend: str, host: str | None, models: Sequence[ModelInfo]) -> None:
    """A table on a terminal; tab-separated lines, ids never cut, when piped."""
    rows = [
        (
            m.name,
            f"{m.size / 1e9:.2f} GB" if m.size else "",
            m.family or "",
            m.parameter_size or "",
            m.quantization or "",
        )
        for m in sorted(models, key=lambda m: m.name)
    ]
    if not out.is_terminal:
        # Written as they are: rich would expand the tabs and pad or wrap at its width.
        lines = [f"# {backend} at {host}", *("\t".join(row) for row in rows)]
        out.file.write("".join(printable(line) + "\n" for line in lines))
        out.file.flush()
        return
    table = Table(title=printable(f"{backend} at {host}"), title_justify="left", show_edge=False)
    for column in ("model", "size", "family", "parameters", "quantization"):
        table.add_column(column, justify="right" if column == "size" else "left", overflow="fold")
    for row in rows:
        table.add_row(*(safe(cell) for cell in row))
    out.print(table)
    if not models:
        out.print("no models")


def show_transcript(out: Console, transcript: Transcript) -> None:
    run = transcript.run
    if run is None:
        out.print(safe(transcript.path, "dim"))
        out.print(Text("incomplete: the run was killed before its first line", style="yellow"))
        return
    names = [a.name for a in run.agents]
    out.print(run_header(run, str(transcript.path)))
    out.print(
        safe(
            f"run {run.run_id}, conversation {run.conversation_id}, started {run.started_at}; "
            f"play it again: sparring rerun {transcript.path}",
            "dim",
        )
    )
    for agent in run.agents:
        options = ", ".join(f"{k}={v}" for k, v in agent.options.items())
        out.print(
            Text.assemble(
                safe("  " + agent.name, f"bold {speaker_style(names, agent.name)}"),
                safe(f"  {agent.model}"),
                safe(f"  {options}", "dim"),
            )
        )
        if agent.persona:
            out.print(safe(f"    persona: {agent.persona}", "dim italic"), soft_wrap=False)
    out.print()
    for turn in transcript.turns:
        out.print(_turn_line(turn, names))
    out.print()
    _show_end(out, transcript, transcript.end)


def _turn_line(turn: TurnRecord, names: Sequence[str]) -> Text:
    style = speaker_style(names, turn.speaker)
    facts = ["scripted"] if turn.scripted else []
    if turn.completion_tokens is not None:
        facts.append(f"{turn.completion_tokens} tokens")
    if turn.latency_ms is not None:
        facts.append(f"{turn.latency_ms / 1000:.1f}s")
    if turn.attempts > 1:
        facts.append(f"{turn.attempts} attempts")
    if turn.done_reason == "length":
        facts.append("cut at num_predict")
    if empty(turn):
        facts.append("empty reply")
    return Text.assemble(
        (f"{turn.index:>3} ", "dim"),
        safe(turn.speaker, f"bold {style}"),
        safe(f" ({', '.join(facts)})" if facts else "", "dim"),
        ": ",
        safe(turn.content.strip(), style),
    )


def _show_end(out: Console, transcript: Transcript, end: EndRecord | None) -> None:
    if end is None and transcript.writing:
        turns = len(transcript.turns)
        out.print(
            Text(f"running: the conversation is still going ({turns} turns so far)", style="cyan")
        )
        return
    if end is None:
        note = "the run was killed before it finished" + (
            " (its last line was cut off)" if transcript.truncated else ""
        )
        out.print(Text(f"incomplete: {note}", style="yellow"))
        return
    line = Text.assemble(
        (end.status, f"bold {STATUS_STYLE[end.status]}"),
        safe(f": {describe_outcome(end.outcome, end.status)}"),
    )
    if end.outcome.matched:
        line.append_text(safe(f"  «{end.outcome.matched}»", "dim"))
    out.print(line)
    if end.error:
        out.print(safe(f"error: {end.error.message}", "red"))
    totals = end.totals
    tokens = "unknown" if totals.completion_tokens is None else totals.completion_tokens
    out.print(
        Text(
            f"{end.turns} turns, {tokens} completion tokens, "
            f"{totals.latency_ms / 1000:.1f}s generating, {end.duration_s}s in all",
            style="dim",
        )
    )


def print_plan(out: Console, run: RunPlan, max_conversations: int, listed: int = 10) -> None:
    """What a run would do: per scenario its engines and seeds, then the count."""
    for part in run.parts:
        scenario = part.scenario
        agents = ", ".join(
            f"{a.name}={a.model}@{part.bindings[a.name].choice.name}" for a in scenario.agents
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
