"""What a person sees in the terminal: live turns, progress, summaries, transcripts."""

from __future__ import annotations

from collections.abc import Sequence

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
from runner.transcript import Outcome, Transcript

PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")


def speaker_style(names: Sequence[str], name: str) -> str:
    try:
        return PALETTE[list(names).index(name) % len(PALETTE)]
    except ValueError:
        return "white"


class LiveObserver(Observer):
    """Streams one conversation's turns as they are generated.

    In simultaneous rounds several agents speak at once, so their turns are printed
    whole when they finish instead of token by token.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.streaming = True
        self.names: list[str] = []
        self._open_line = False
        self._fresh = True

    def conversation_started(self, event: ConversationStarted) -> None:
        run = event.run
        self.streaming = run.order != "simultaneous"
        self.names = [a.name for a in run.agents]
        self.console.print(
            Text.assemble(
                (run.scenario, "bold"),
                f"  {run.order}, up to {run.max_turns} turns, seed {run.seed}",
                f"\n{run.backend} at {run.host} ({run.backend_reason})",
                ("\ntranscript: ", "dim"),
                (str(event.path), "dim"),
            )
        )
        for agent in run.agents:
            self.console.print(
                Text.assemble(
                    ("  " + agent.name, speaker_style(self.names, agent.name)), f"  {agent.model}"
                )
            )
        self.console.print()

    def _header(self, speaker: str, model: str, scripted: bool) -> Text:
        return Text.assemble(
            (speaker, f"bold {speaker_style(self.names, speaker)}"),
            (f" ({model}{', scripted' if scripted else ''})", "dim"),
            ": ",
        )

    def turn_started(self, event: TurnStarted) -> None:
        if not self.streaming:
            return
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
        self.console.print(Text(text, style=speaker_style(self.names, event.speaker)), end="")

    def retrying(self, event: Retrying) -> None:
        if self.streaming:
            self.console.print(
                Text(f"\n  [{event.message}; retrying in {event.wait:.1f}s]", style="dim yellow")
            )
            self.console.print(self._header(event.speaker, event.model, False), end="")
            self._fresh = True

    def turn_finished(self, event: TurnFinished) -> None:
        if self.streaming:
            self.console.print()
            self._open_line = False
            return
        record = event.record
        self.console.print(
            self._header(record.speaker, record.model, record.scripted),
            Text(record.content.strip(), style=speaker_style(self.names, record.speaker)),
            Text(f"  [round {record.round}]", style="dim"),
        )

    def conversation_finished(self, event: ConversationFinished) -> None:
        if self._open_line:
            self.console.print()
        self.console.print()


class ProgressObserver(Observer):
    """A progress bar over many conversations."""

    def __init__(self, console: Console, total: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[turns]} turns, {task.fields[errors]} errors"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("conversations", total=total, turns=0, errors=0)
        self.turns = 0
        self.errors = 0

    def __enter__(self) -> ProgressObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def turn_finished(self, event: TurnFinished) -> None:
        self.turns += 1
        self.progress.update(self.task, turns=self.turns)

    def conversation_finished(self, event: ConversationFinished) -> None:
        if event.end.status == "error":
            self.errors += 1
        self.progress.update(self.task, advance=1, errors=self.errors)


class PullProgress:
    """Prints a pull's progress. ollama reports many times a second: this shows status
    changes and 10% steps only."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.shown: dict[str, tuple[str, int]] = {}

    def __call__(self, model: str, status: str, done: int | None, total: int | None) -> None:
        percent = int(100 * done / total) if done is not None and total else -1
        step = (status, percent // 10)
        if self.shown.get(model) == step:
            return
        self.shown[model] = step
        self.console.print(f"pulling {model}: {status}" + (f" {percent}%" if percent >= 0 else ""))


def describe_outcome(outcome: Outcome, status: str) -> str:
    if status == "error":
        return "error"
    if status == "cancelled":
        return "cancelled"
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


def summary(console: Console, results: Sequence[Result]) -> None:
    """One line per conversation (status, outcome, turns) and where its transcript is."""
    console.print(Text("summary", style="bold"))
    for r in results:
        style = {"success": "green", "error": "red", "cancelled": "yellow"}.get(r.status, "")
        outcome = describe_outcome(r.outcome, r.status)
        if r.error:
            outcome += f": {r.error.message}"
        label = r.scenario if len(results) == 1 else f"{r.scenario}#{r.repeat_index}"
        console.print(
            Text.assemble(
                f"  {label}  ",
                (r.status, style),
                f"  {outcome}  ({r.turns} turns)\n    ",
                (str(r.path), "dim"),
            ),
            soft_wrap=True,
        )


def models_table(
    console: Console, backend: str, host: str | None, models: Sequence[ModelInfo]
) -> None:
    table = Table(title=f"{backend} at {host}", title_justify="left", show_edge=False)
    for column in ("model", "size", "family", "parameters", "quantization"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for m in sorted(models, key=lambda m: m.name):
        size = f"{m.size / 1e9:.2f} GB" if m.size else ""
        table.add_row(m.name, size, m.family or "", m.parameter_size or "", m.quantization or "")
    console.print(table)
    if not models:
        console.print("no models")


def show_transcript(console: Console, transcript: Transcript) -> None:
    run = transcript.run
    if run is None:
        console.print(Text.assemble((str(transcript.path), "dim"), "\n"))
        console.print(Text("incomplete: the run was killed before its first line", style="yellow"))
        return
    names = [a.name for a in run.agents]
    console.print(
        Text.assemble(
            (run.scenario, "bold"),
            f"  {run.order}, seed {run.seed}, {run.backend} at {run.host}",
            (
                f"\nrun {run.run_id}, conversation {run.conversation_id}, started {run.started_at}",
                "dim",
            ),
            (f"\n{transcript.path}", "dim"),
        )
    )
    for agent in run.agents:
        options = ", ".join(f"{k}={v}" for k, v in agent.options.items())
        console.print(
            Text.assemble(
                ("  " + agent.name, f"bold {speaker_style(names, agent.name)}"),
                f"  {agent.model}",
                (f"  {options}", "dim"),
            )
        )
        if agent.persona:
            console.print(
                Text(f"    persona: {agent.persona}", style="dim italic"), soft_wrap=False
            )
    console.print()
    for turn in transcript.turns:
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
        console.print(
            Text.assemble(
                (f"{turn.index:>3} ", "dim"),
                (turn.speaker, f"bold {style}"),
                (f" ({', '.join(facts)})" if facts else "", "dim"),
                ": ",
                (turn.content.strip(), style),
            )
        )
    console.print()
    end = transcript.end
    if end is None and transcript.writing:
        console.print(
            Text(
                f"running: the conversation is still going ({len(transcript.turns)} turns so far)",
                style="cyan",
            )
        )
        return
    if end is None:
        note = "the run was killed before it finished" + (
            " (its last line was cut off)" if transcript.truncated else ""
        )
        console.print(Text(f"incomplete: {note}", style="yellow"))
        return
    status_style = {"success": "green", "error": "red", "cancelled": "yellow"}[end.status]
    outcome = describe_outcome(end.outcome, end.status)
    line = Text.assemble((end.status, f"bold {status_style}"), f": {outcome}")
    if end.outcome.matched:
        line.append(f"  «{end.outcome.matched}»", style="dim")
    console.print(line)
    if end.error:
        console.print(Text(f"error: {end.error.message}", style="red"))
    totals = end.totals
    tokens = "unknown" if totals.completion_tokens is None else totals.completion_tokens
    console.print(
        Text(
            f"{end.turns} turns, {tokens} completion tokens, "
            f"{totals.latency_ms / 1000:.1f}s generating, {end.duration_s}s in all",
            style="dim",
        )
    )
