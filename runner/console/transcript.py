"""A transcript printed readably (``sparring show``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from runner.console import (
    STATUS_STYLE,
    describe_outcome,
    empty,
    run_header,
    safe,
    speaker_style,
)
from runner.transcript import EndRecord, PhaseRecord, Transcript, TurnRecord


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
    if run.moderator is not None:
        how = f"  {run.moderator.model}" if run.moderator.model else "  reads its lines"
        out.print(Text.assemble(safe("  " + run.moderator.name, "bold"), safe(how + ", moderator")))
    out.print()
    phases = {phase.first_turn: phase for phase in transcript.phases}
    for turn in transcript.turns:
        if turn.phase is not None and (phase := phases.pop(turn.index, None)) is not None:
            out.print(phase_heading(phase))
        out.print(_turn_line(turn, names))
    out.print()
    if transcript.votes:
        _show_votes(out, transcript)
        out.print()
    _show_end(out, transcript, transcript.end)


def _show_votes(out: Console, transcript: Transcript) -> None:
    """Each judge's votes per stage (both orders), then the jury's tally."""
    by_judge: dict[tuple[str, str], dict[str, list[str]]] = {}
    for vote in transcript.votes:
        cast = by_judge.setdefault((vote.judge, vote.model), {})
        cast.setdefault(vote.stage, []).append(vote.vote or "no vote")
    out.print(Text("jury", style="bold"))
    for (judge, model), stages in by_judge.items():
        flagged = any(v.self_judged for v in transcript.votes if v.judge == judge)
        said = "; ".join(f"{stage}: {'/'.join(votes)}" for stage, votes in stages.items())
        note = "  (a debater's model)" if flagged else ""
        out.print(safe(f"  {judge} ({model}): {said}{note}"))
    tallies = transcript.end.outcome.votes if transcript.end else None
    for stage, counts in (tallies or {}).items():
        listed = ", ".join(f"{n} {what}" for what, n in counts.items())
        out.print(safe(f"  {stage}: {listed}", "dim"))


def phase_heading(phase: PhaseRecord) -> Text:
    """A phase's name, and what it asks of its speakers."""
    budget = ", ".join(f"{v} {k}" for k, v in (phase.budget or {}).items())
    facts = [f"{phase.turns} turn{'s' if phase.turns > 1 else ''} each"]
    if budget:
        facts.append(f"at most {budget} a speech")
    line = Text.assemble(
        ("── ", "dim"),
        safe(phase.name, "bold underline"),
        safe(f"  {', '.join(phase.speakers)}; {'; '.join(facts)}", "dim"),
    )
    if phase.instruction:
        line.append_text(safe(f"\n    {phase.instruction}", "dim italic"))
    return line


def _turn_line(turn: TurnRecord, names: Sequence[str]) -> Text:
    style = speaker_style(names, turn.speaker)
    facts = ["moderator"] if turn.role == "moderator" else []
    facts += ["scripted"] if turn.scripted else []
    if turn.completion_tokens is not None:
        facts.append(f"{turn.completion_tokens} tokens")
    if turn.latency_ms is not None:
        facts.append(f"{turn.latency_ms / 1000:.1f}s")
    if turn.attempts > 1:
        facts.append(f"{turn.attempts} attempts")
    if turn.done_reason == "length":
        facts.append("cut at num_predict")
    if turn.words is not None and turn.budget is not None and "words" in turn.budget:
        facts.append(f"{turn.words}/{turn.budget['words']} words")
    if "words" in turn.overrun:
        facts.append("over its word budget")
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
