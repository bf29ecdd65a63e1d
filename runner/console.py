"""What a person sees in the terminal: live turns, progress, summaries, transcripts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agents.backends.base import ModelInfo
from agents.errors import BackendError
from runner.conversation import Conversation, Observer, Result
from runner.transcript import Transcript

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
        self._open_line = False
        self._fresh = True

    def conversation_started(self, conv: Conversation) -> None:
        scenario = conv.scenario
        self.streaming = scenario.order != "simultaneous"
        self.names = [a.name for a in scenario.agents]
        binding = conv.plan.bindings[self.names[0]]
        self.console.print(
            Text.assemble(
                (scenario.name, "bold"),
                f"  {scenario.order}, up to {scenario.max_turns} turns, seed {conv.plan.seed}",
                f"\n{binding.choice.name} at {binding.backend.host} ({binding.choice.reason})",
                ("\ntranscript: ", "dim"),
                (str(conv.path), "dim"),
            )
        )
        for agent in scenario.agents:
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

    def turn_started(self, conv: Conversation, speaker: str) -> None:
        if not self.streaming:
            return
        agent = next(a for a in conv.agents if a.name == speaker)
        scripted = agent.opening is not None and conv.spoken[speaker] == 0
        self.console.print(self._header(speaker, agent.model, scripted), end="")
        self._open_line = True
        self._fresh = True

    def delta(self, conv: Conversation, speaker: str, text: str) -> None:
        if not self.streaming:
            return
        if self._fresh:  # replies often open with a space or newline; the label has one
            text = text.lstrip()
            self._fresh = not text
        self.console.print(Text(text, style=speaker_style(self.names, speaker)), end="")

    def retrying(self, conv: Conversation, speaker: str, error: BackendError, wait: float) -> None:
        if self.streaming:
            self.console.print(
                Text(f"\n  [{error.message}; retrying in {wait:.1f}s]", style="dim yellow")
            )
            agent = next(a for a in conv.agents if a.name == speaker)
            self.console.print(self._header(speaker, agent.model, False), end="")
            self._fresh = True

    def turn_finished(self, conv: Conversation, record: dict[str, Any]) -> None:
        if self.streaming:
            self.console.print()
            self._open_line = False
            return
        self.console.print(
            self._header(record["speaker"], record["model"], record["scripted"]),
            Text(record["content"].strip(), style=speaker_style(self.names, record["speaker"])),
            Text(f"  [round {record['round']}]", style="dim"),
        )

    def conversation_finished(self, conv: Conversation, record: dict[str, Any]) -> None:
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

    def turn_finished(self, conv: Conversation, record: dict[str, Any]) -> None:
        self.turns += 1
        self.progress.update(self.task, turns=self.turns)

    def conversation_finished(self, conv: Conversation, record: dict[str, Any]) -> None:
        if record["status"] == "error":
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


def describe_outcome(outcome: dict[str, Any], status: str) -> str:
    if status == "error":
        return "error"
    if status == "cancelled":
        return "cancelled"
    reason = outcome.get("reason")
    if outcome.get("winner") or outcome.get("loser"):
        parts = []
        if outcome.get("winner"):
            parts.append(f"{outcome['winner']} wins")
        if outcome.get("loser"):
            parts.append(f"{outcome['loser']} loses")
        turn = outcome.get("turn")
        return ", ".join(parts) + (
            f" (turn {turn}: {outcome.get('rule')})" if turn is not None else ""
        )
    if reason == "end_rule":
        return f"draw ({outcome.get('rule')})"
    return {"max_turns": "turn limit reached", "agent_turn_limits": "every agent at its limit"}.get(
        str(reason), str(reason)
    )


def summary(console: Console, results: Sequence[Result]) -> None:
    """One line per conversation (status, outcome, turns) and where its transcript is."""
    console.print(Text("summary", style="bold"))
    for r in results:
        style = {"success": "green", "error": "red", "cancelled": "yellow"}.get(r.status, "")
        outcome = describe_outcome(r.outcome, r.status)
        if r.error:
            outcome += f": {r.error.get('message')}"
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
    if end is None:
        note = "the run was killed before it finished" + (
            " (its last line was cut off)" if transcript.truncated else ""
        )
        console.print(Text(f"incomplete: {note}", style="yellow"))
        return
    status_style = {"success": "green", "error": "red", "cancelled": "yellow"}[end.status]
    outcome = describe_outcome(end.outcome.model_dump(), end.status)
    line = Text.assemble((end.status, f"bold {status_style}"), f": {outcome}")
    if end.outcome.matched:
        line.append(f"  «{end.outcome.matched}»", style="dim")
    console.print(line)
    if end.error:
        console.print(Text(f"error: {end.error.get('message')}", style="red"))
    totals = end.totals
    console.print(
        Text(
            f"{end.turns} turns, {totals.get('completion_tokens', 0)} completion tokens, "
            f"{totals.get('latency_ms', 0) / 1000:.1f}s generating, {end.duration_s}s in all",
            style="dim",
        )
    )
