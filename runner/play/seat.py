"""A seat at the table: one agent in one conversation, and how it takes a turn."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from agents.agent import Agent, Utterance
from agents.backends.base import ChatRequest
from agents.errors import BackendError
from runner.model.generate import Generation
from runner.model.handle import Model
from runner.play.events import Observer, Retrying, TextDelta, TurnStarted
from runner.play.recorder import iso, now_iso
from runner.play.seeds import derive_seed
from runner.scenario.phases import Budget, count_words
from runner.scenario.schema import ResolvedScenario
from runner.transcript import AgentInfo, AttemptError, TurnRecord


@dataclass(frozen=True, slots=True)
class Cue:
    """What a phase asks of a speech: its instruction, its budget, or a fixed line."""

    phase: int
    instruction: str | None = None
    budget: Budget | None = None
    line: str | None = None  # said verbatim instead of generating


@dataclass(frozen=True, slots=True)
class Table:
    """What every seat of one conversation shares."""

    conversation_id: str
    scenario: ResolvedScenario
    observer: Observer


class Seat:
    """An agent in one conversation: its model, its seeded config, its turn count."""

    def __init__(self, agent: Agent, model: Model | None, run_seed: int) -> None:
        """``model`` is None for a seat that only reads lines (a scripted moderator)."""
        self.agent = agent
        self.model = model
        # An explicit seed is kept as written; otherwise each agent gets its own seed
        # derived from the run's, so repeats differ and every run can be replayed.
        seed = agent.options.seed
        self.config = agent.options.model_copy(
            update={"seed": seed if seed is not None else derive_seed(run_seed, agent.name)}
        )
        self.spoken = 0

    @property
    def scripted_next(self) -> bool:
        return self.agent.opening is not None and self.spoken == 0

    def can_speak(self) -> bool:
        return self.agent.max_turns is None or self.spoken < self.agent.max_turns

    def request(
        self, history: Sequence[Utterance], *, label_others: bool, window: int | None,
        kickoff: str, session: str, cue: Cue | None = None,
    ) -> ChatRequest:  # fmt: skip
        messages = self.agent.view(
            history, label_others=label_others, window=window, kickoff=kickoff
        )
        if cue is not None and cue.instruction:
            # The phase's instruction closes the system prompt: it changes only between
            # phases, so the prompt still grows at its end within one.
            if messages and messages[0]["role"] == "system":
                messages[0]["content"] = f"{messages[0]['content']}\n\n{cue.instruction}"
            else:
                messages.insert(0, {"role": "system", "content": cue.instruction})
        # A fixed seed on every request would restart the same random sequence each turn
        # (and tiny models then repeat themselves word for word): each turn gets its own
        # seed, derived from the agent's and its turn number, so runs still replay.
        assert self.config.seed is not None
        update: dict[str, object] = {"seed": derive_seed(self.config.seed, self.spoken)}
        if cue is not None and cue.budget is not None and cue.budget.tokens is not None:
            update["num_predict"] = cue.budget.tokens  # the engine stops the speech there
        config = self.config.model_copy(update=update)
        # A window drops the oldest turns: the next request no longer extends this one.
        extends = window is None
        return ChatRequest(self.agent.model, messages, config, session=session, extends=extends)

    def info(self) -> AgentInfo:
        if self.model is None:
            return AgentInfo(name=self.agent.name, model="", persona=self.agent.persona)
        backend, model = self.model.backend, self.model.info
        return AgentInfo(
            name=self.agent.name,
            model=self.agent.model,
            model_digest=model.digest if model else None,
            persona=self.agent.persona,
            opening=self.agent.opening,
            max_turns=self.agent.max_turns,
            options=self.config.set_fields(),
            ignored_options=self.config.unsupported(backend.supported_options),
            backend=self.model.choice.name,
            host=backend.host,
        )

    async def speak(
        self, round_no: int, history: Sequence[Utterance], table: Table, cue: Cue | None = None
    ) -> TurnRecord:
        """Say the opening (or the phase's fixed line), or generate a reply to ``history``;
        the record is not numbered yet."""
        agent, cid, observer = self.agent, table.conversation_id, table.observer
        line = cue.line if cue is not None and cue.line is not None else None
        if line is None and self.scripted_next:
            line = agent.opening or ""
        scripted = line is not None
        observer.turn_started(TurnStarted(cid, agent.name, agent.model, scripted, round_no))
        if line is not None:
            observer.delta(TextDelta(cid, agent.name, line))
            record = _scripted_turn(agent, round_no, line)
        else:
            assert self.model is not None, "a seat without a model only reads lines"
            scenario = table.scenario
            window = scenario.history if isinstance(scenario.history, int) else None
            request = self.request(
                history,
                label_others=scenario.labelled,
                window=window,
                kickoff=scenario.kickoff,
                session=f"{cid}/{agent.name}",
                cue=cue,
            )

            def retrying(exc: BackendError, attempt: int, wait: float) -> None:
                event = Retrying(cid, agent.name, agent.model, exc.kind, exc.message, attempt, wait)
                observer.retrying(event)

            result = await self.model.generate(
                request,
                on_delta=lambda text: observer.delta(TextDelta(cid, agent.name, text)),
                on_retry=retrying,
            )
            record = _generated_turn(agent, round_no, request, result, self.model.backend.host)
        self.spoken += 1
        return record if cue is None else _within(record, cue)


async def speak_together(
    seats: Sequence[tuple[Seat, Sequence[Utterance]]], round_no: int, table: Table
) -> list[TurnRecord]:
    """Several seats answer at the same time; their records in the given order.

    One seat's failure ends the round (the others are cancelled) and is raised as it is,
    like a failure in a sequential round.
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(seat.speak(round_no, h, table)) for seat, h in seats]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def _within(record: TurnRecord, cue: Cue) -> TurnRecord:
    """The turn with its phase, and under a budget its word count and what it overran."""
    update: dict[str, object] = {"phase": cue.phase}
    budget = cue.budget
    if budget is not None:
        words = count_words(record.content)
        overrun = []
        if budget.words is not None and words > budget.words:
            overrun.append("words")
        if budget.tokens is not None and not record.scripted and record.done_reason == "length":
            overrun.append("tokens")
        update |= {
            "budget": budget.model_dump(exclude_none=True),
            "words": words,
            "overrun": overrun,
        }
    return record.model_copy(update=update)


def _scripted_turn(agent: Agent, round_no: int, line: str) -> TurnRecord:
    stamp = now_iso()
    return TurnRecord(
        index=0,  # numbered by the recorder
        round=round_no,
        speaker=agent.name,
        model=agent.model,
        content=line,
        started_at=stamp,
        ended_at=stamp,
        attempts=0,
        scripted=True,
    )


def _generated_turn(
    agent: Agent, round_no: int, request: ChatRequest, result: Generation, host: str | None
) -> TurnRecord:
    final = result.final
    return TurnRecord(
        index=0,  # numbered by the recorder
        round=round_no,
        speaker=agent.name,
        model=agent.model,
        content=result.text,
        started_at=iso(result.started_at),
        ended_at=iso(result.ended_at),
        ttft_ms=None if result.ttft_ms is None else round(result.ttft_ms, 3),
        latency_ms=round(result.latency_ms, 3),
        prompt_tokens=final.prompt_tokens,
        completion_tokens=final.completion_tokens,
        done_reason=final.done_reason,
        attempts=result.attempts,
        attempt_errors=[AttemptError(kind=e.kind, message=e.message) for e in result.failures],
        scripted=False,
        seed=request.config.seed,
        server=final.server,
        host=final.host if final.host and final.host != host else None,
    )
