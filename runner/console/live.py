"""One conversation, streamed as it is generated."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from runner.console import empty, empty_note, run_header, safe, speaker_style
from runner.console.transcript import phase_heading
from runner.play.events import (
    ConversationFinished,
    ConversationStarted,
    Observer,
    PhaseStarted,
    Retrying,
    TextDelta,
    TurnFinished,
    TurnStarted,
    VoteCast,
)
from runner.transcript.records import EndRecord


class LiveObserver(Observer):
    """Streams one conversation's turns as they are generated.

    In simultaneous rounds several agents speak at once, so their turns are printed
    whole when they finish instead of token by token.
    """

    def __init__(self, out: Console) -> None:
        self.console = out
        self.streaming = True
        self.names: list[str] = []
        self.moderator: str | None = None
        self._open_line = False
        self._fresh = True

    def conversation_started(self, event: ConversationStarted) -> None:
        run = event.run
        self.streaming = run.order != "simultaneous"
        self.names = [a.name for a in run.agents]
        self.moderator = run.moderator.name if run.moderator else None
        self.console.print(run_header(run, str(event.path)))
        for agent in run.agents:
            style = speaker_style(self.names, agent.name)
            self.console.print(
                Text.assemble(safe("  " + agent.name, style), safe(f"  {agent.model}"))
            )
        self.console.print()

    def _header(self, speaker: str, model: str, scripted: bool) -> Text:
        facts = [model] if model else []
        facts += ["moderator"] if speaker == self.moderator else []
        facts += ["scripted"] if scripted else []
        return Text.assemble(
            safe(speaker, f"bold {speaker_style(self.names, speaker)}"),
            safe(f" ({', '.join(facts)})", "dim"),
            ": ",
        )

    def phase_started(self, event: PhaseStarted) -> None:
        self.console.print(phase_heading(event.record))

    def vote_cast(self, event: VoteCast) -> None:
        vote = event.record
        said = vote.vote or f"no vote ({vote.error})"
        reason = f": {vote.reason}" if vote.reason else ""
        flag = ", a debater's model" if vote.self_judged else ""
        self.console.print(
            safe(f"  vote {vote.stage}, {vote.order}: {vote.judge} ({vote.model}{flag}) "
                 f"{said}{reason}", "dim")
        )  # fmt: skip

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
