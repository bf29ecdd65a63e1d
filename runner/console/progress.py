"""Progress over many conversations, and over a model being pulled."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runner.console import empty, empty_note, safe
from runner.play.events import ConversationFinished, Observer, Retrying, TurnFinished


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
