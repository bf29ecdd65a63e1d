"""A batch's tally: per agent and model, how its conversations went.

It is an observer, so it counts as conversations finish and keeps one row per agent and
model, however many conversations run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from runner.play.events import ConversationFinished, ConversationStarted, Observer, TurnFinished


@dataclass(slots=True)
class Row:
    agent: str
    model: str
    conversations: int = 0
    wins: int = 0
    losses: int = 0
    draws: int = 0
    concessions: int = 0  # losses by an end rule the agent itself triggered
    errors: int = 0  # conversations that ended in error
    turns: int = 0  # generated turns
    tokens: int | None = 0  # completion tokens; None once any turn's count is unknown


class Tally(Observer):
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}
        self.statuses: Counter[str] = Counter()
        self.retries = 0
        self.started = 0  # conversations that began; an interrupted run may not start them all

    @property
    def conversations(self) -> int:
        return sum(self.statuses.values())

    def _row(self, agent: str, model: str) -> Row:
        row = self.rows.get((agent, model))
        if row is None:
            row = self.rows[(agent, model)] = Row(agent, model)
        return row

    def conversation_started(self, event: ConversationStarted) -> None:
        self.started += 1

    def turn_finished(self, event: TurnFinished) -> None:
        record = event.record
        if record.scripted:
            return
        row = self._row(record.speaker, record.model)
        row.turns += 1
        if row.tokens is not None:
            row.tokens = (
                None if record.completion_tokens is None else row.tokens + record.completion_tokens
            )

    def conversation_finished(self, event: ConversationFinished) -> None:
        end = event.end
        self.statuses[end.status] += 1
        self.retries += end.totals.retries
        outcome = end.outcome
        for agent in event.run.agents:
            row = self._row(agent.name, agent.model)
            row.conversations += 1
            if end.status == "error":
                row.errors += 1
            elif end.status != "success":
                continue
            elif outcome.winner == agent.name:
                row.wins += 1
            elif outcome.loser == agent.name:
                row.losses += 1
                if outcome.reason == "end_rule":
                    row.concessions += 1
            elif outcome.winner is None and outcome.loser is None:
                row.draws += 1
