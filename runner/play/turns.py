"""Turn order: who speaks in each round, and what each speaker sees of the rounds so far."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from agents.agent import Agent, Utterance
from runner.scenario.snapshot import Order
from runner.transcript import TurnRecord


class TurnOrder(Protocol):
    # Speakers of one round answer at the same time (their requests run concurrently).
    concurrent: bool

    def speakers(self, agents: Sequence[Agent]) -> list[Agent]:
        """Who speaks in the next round, in order."""
        ...

    def history(self, turns: Sequence[TurnRecord], agent: Agent) -> list[Utterance]:
        """The turns so far, in the order ``agent`` is shown them."""
        ...


class RoundRobin:
    """The agents in list order, one after the other."""

    concurrent = False

    def speakers(self, agents: Sequence[Agent]) -> list[Agent]:
        return list(agents)

    def history(self, turns: Sequence[TurnRecord], agent: Agent) -> list[Utterance]:
        return [Utterance(t.speaker, t.content) for t in turns]


class Shuffled(RoundRobin):
    """Every round a new seeded shuffle of the agents: everyone speaks once per round.

    The generator is the order's own, seeded from the conversation's seed and used for
    nothing else, so retries, timing and faults never change who speaks when.
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def speakers(self, agents: Sequence[Agent]) -> list[Agent]:
        order = list(agents)
        self._rng.shuffle(order)
        return order


class Simultaneous(RoundRobin):
    """Every agent answers the previous rounds at the same time."""

    concurrent = True

    def history(self, turns: Sequence[TurnRecord], agent: Agent) -> list[Utterance]:
        """Per round, the agent's own answer, then everyone else's.

        The agents answered at the same time, so no order within a round is real; putting
        one's own answer first makes each round one assistant + one user message.
        """
        ordered = sorted(turns, key=lambda t: (t.round, t.speaker != agent.name))
        return [Utterance(t.speaker, t.content) for t in ordered]


def turn_order(order: Order, seed: int) -> TurnOrder:
    if order == "random":
        return Shuffled(seed)
    if order == "simultaneous":
        return Simultaneous()
    if order == "round_robin":
        return RoundRobin()
    # Validated scenarios never get here: an order nobody checked is a bug, not round robin.
    raise ValueError(f"unknown order {order!r}")
