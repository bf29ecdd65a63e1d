"""One conversation: seats take turns, the referee judges, the recorder writes it down."""

from __future__ import annotations

import asyncio
import secrets
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from agents.agent import Agent, Utterance
from agents.backends.base import ChatRequest, ModelInfo
from agents.errors import BackendError
from runner import __version__
from runner.events import (
    ConversationFinished,
    ConversationStarted,
    Observer,
    Retrying,
    TextDelta,
    TurnFinished,
    TurnStarted,
)
from runner.generate import Generation, generate
from runner.plan import Plan, derive_seed
from runner.pool import BackendPool, Binding
from runner.recorder import Recorder, iso, now_iso
from runner.rules import Referee
from runner.settings import RunSettings
from runner.transcript import (
    AgentInfo,
    EndRecord,
    ErrorInfo,
    Outcome,
    RunRecord,
    Status,
    TimeoutsInfo,
    TurnRecord,
)
from runner.turns import turn_order

log = structlog.get_logger("sparring.conversation")


@dataclass(slots=True)
class Result:
    """A finished conversation: its transcript's path, first and last records."""

    path: Path
    run: RunRecord
    end: EndRecord

    @property
    def scenario(self) -> str:
        return self.run.scenario

    @property
    def repeat_index(self) -> int:
        return self.run.repeat_index

    @property
    def status(self) -> str:
        return self.end.status

    @property
    def outcome(self) -> Outcome:
        return self.end.outcome

    @property
    def error(self) -> ErrorInfo | None:
        return self.end.error

    @property
    def turns(self) -> int:
        return self.end.turns


class Seat:
    """An agent in one conversation: its backend, its seeded config, its turn count."""

    def __init__(self, agent: Agent, binding: Binding, run_seed: int) -> None:
        self.agent = agent
        self.binding = binding
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
        kickoff: str, session: str,
    ) -> ChatRequest:  # fmt: skip
        messages = self.agent.view(
            history, label_others=label_others, window=window, kickoff=kickoff
        )
        # A fixed seed on every request would restart the same random sequence each turn
        # (and tiny models then repeat themselves word for word): each turn gets its own
        # seed, derived from the agent's and its turn number, so runs still replay.
        assert self.config.seed is not None
        config = self.config.model_copy(update={"seed": derive_seed(self.config.seed, self.spoken)})
        return ChatRequest(self.agent.model, messages, config, session=session)

    def info(self, model: ModelInfo | None) -> AgentInfo:
        backend = self.binding.backend
        return AgentInfo(
            name=self.agent.name,
            model=self.agent.model,
            model_digest=model.digest if model else None,
            persona=self.agent.persona,
            opening=self.agent.opening,
            max_turns=self.agent.max_turns,
            options=self.config.set_fields(),
            ignored_options=self.config.unsupported(backend.supported_options),
            backend=self.binding.choice.name,
            host=backend.host,
        )


def error_info(exc: BaseException) -> ErrorInfo:
    """An exception as transcript data; anything not a BackendError is sparring's own bug."""
    if isinstance(exc, BackendError):
        return ErrorInfo.model_validate(exc.to_dict())
    detail = "".join(traceback.format_exception(exc, limit=-8)).strip()
    return ErrorInfo(
        type=type(exc).__name__,
        kind="internal",
        message=f"internal error (please report it): {type(exc).__name__}: {exc}",
        traceback=detail,
    )


class Conversation:
    """One run of one scenario, written to one transcript."""

    def __init__(
        self,
        plan: Plan,
        pool: BackendPool,
        settings: RunSettings,
        *,
        run_id: str,
        observer: Observer | None = None,
        model_infos: dict[tuple[int, str], ModelInfo] | None = None,
    ) -> None:
        self.plan = plan
        self.scenario = plan.scenario
        self.pool = pool
        self.settings = settings
        self.run_id = run_id
        self.conversation_id = secrets.token_hex(6)
        self.observer = observer or Observer()
        self.agents = list(self.scenario.agents)
        self.seats = {a.name: Seat(a, plan.bindings[a.name], plan.seed) for a in self.agents}
        self.referee = Referee(self.scenario.end, [a.name for a in self.agents])
        self.order = turn_order(self.scenario.order, plan.seed)
        self.model_infos = model_infos or {}
        self.recorder: Recorder | None = None
        self.log = log.bind(
            run_id=run_id,
            conversation=self.conversation_id,
            scenario=self.scenario.name,
            repeat=plan.repeat_index,
        )

    def _run_record(self) -> RunRecord:
        scenario, settings = self.scenario, self.settings
        first = self.seats[self.agents[0].name].binding
        agents = []
        for seat in self.seats.values():
            key = (id(seat.binding.backend), seat.agent.model)
            agents.append(seat.info(self.model_infos.get(key)))
        return RunRecord(
            run_id=self.run_id,
            conversation_id=self.conversation_id,
            scenario=scenario.name,
            description=scenario.description,
            source=scenario.source,
            scenario_hash=scenario.hash,
            repeat_index=self.plan.repeat_index,
            repeat=scenario.repeat,
            seed=self.plan.seed,
            base_seed=self.plan.base_seed,
            order=scenario.order,
            history=scenario.history,
            max_turns=scenario.max_turns,
            kickoff=scenario.kickoff,
            end_rules=[rule.model_dump(exclude_none=True) for rule in scenario.end],
            vars=scenario.vars,
            agents=agents,
            backend=first.choice.name,
            backend_reason=first.choice.reason,
            host=first.backend.host,
            timeouts=TimeoutsInfo(
                connect_s=settings.timeouts.connect,
                first_token_s=settings.timeouts.first_token,
                reply_s=settings.timeouts.reply,
            ),
            sparring_version=__version__,
            started_at=now_iso(),
        )

    # ------------------------------------------------------------------ turns

    @property
    def turns(self) -> list[TurnRecord]:
        return self.recorder.turns if self.recorder else []

    async def _speak(self, agent: Agent, round_no: int, history: list[Utterance]) -> TurnRecord:
        seat = self.seats[agent.name]
        scripted = seat.scripted_next
        cid = self.conversation_id
        self.observer.turn_started(TurnStarted(cid, agent.name, agent.model, scripted, round_no))
        if scripted:
            assert agent.opening is not None
            self.observer.delta(TextDelta(cid, agent.name, agent.opening))
            record = _scripted_turn(agent, round_no)
        else:
            request = seat.request(
                history,
                label_others=len(self.agents) > 2,
                window=self.scenario.history if isinstance(self.scenario.history, int) else None,
                kickoff=self.scenario.kickoff,
                session=f"{cid}/{agent.name}",
            )
            backend = seat.binding.backend

            def retrying(exc: BackendError, attempt: int, wait: float) -> None:
                event = Retrying(cid, agent.name, agent.model, exc.kind, exc.message, attempt, wait)
                self.observer.retrying(event)

            result = await generate(
                backend,
                request,
                timeouts=self.settings.timeouts,
                retry=self.settings.retry,
                limit=self.pool.limit(backend, agent.model),
                on_delta=lambda text: self.observer.delta(TextDelta(cid, agent.name, text)),
                on_retry=retrying,
            )
            record = _generated_turn(agent, round_no, request, result, backend.host)
        seat.spoken += 1
        return record

    async def _speak_together(self, agents: list[Agent], round_no: int) -> list[TurnRecord]:
        """A simultaneous round: every speaker answers the same turns, concurrently."""
        snapshot = list(self.turns)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._speak(a, round_no, self.order.history(snapshot, a)))
                    for a in agents
                ]
        except ExceptionGroup as failed:
            # One agent's failure ends the round (the others were cancelled); report it
            # like a failure in a sequential round.
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    def _commit(self, record: TurnRecord) -> Outcome | None:
        """Write a finished turn, tell the observers, and judge it."""
        assert self.recorder is not None
        record = self.recorder.turn(record)
        self.observer.turn_finished(TurnFinished(record))
        if record.scripted:
            return None  # a scripted line is the scenario speaking, not the agent conceding
        return self.referee.judge(record.speaker, record.content, record.index, self.turns)

    def _limit_outcome(self) -> Outcome | None:
        last = len(self.turns) - 1
        if len(self.turns) >= self.scenario.max_turns:
            return Outcome(reason="max_turns", turn=last)
        if not any(seat.can_speak() for seat in self.seats.values()):
            return Outcome(reason="agent_turn_limits", turn=last)
        return None

    async def _play(self) -> Outcome:
        round_no = 0
        while True:
            round_no += 1
            speakers = [
                a for a in self.order.speakers(self.agents) if self.seats[a.name].can_speak()
            ]
            if self.order.concurrent:
                speakers = speakers[: self.scenario.max_turns - len(self.turns)]
                fired: list[Outcome] = []
                for record in await self._speak_together(speakers, round_no):
                    outcome = self._commit(record)  # in agent order: the first rule to fire wins
                    if outcome is not None:
                        fired.append(outcome)
                if fired:
                    return fired[0]
                if (limit := self._limit_outcome()) is not None:
                    return limit
                continue
            for agent in speakers:
                history = self.order.history(self.turns, agent)
                outcome = self._commit(await self._speak(agent, round_no, history))
                if outcome is not None:
                    return outcome
                if (limit := self._limit_outcome()) is not None:
                    return limit

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> Result:
        self.recorder = Recorder(self.settings.out_dir, self._run_record())
        # Each conversation is its own task with its own context: every log line inside it,
        # retries in generate() included, carries these ids.
        structlog.contextvars.bind_contextvars(
            run_id=self.run_id, conversation=self.conversation_id, scenario=self.scenario.name
        )
        self.observer.conversation_started(ConversationStarted(self.recorder.run, self.path))
        self.log.info("conversation started", transcript=str(self.path), seed=self.plan.seed)
        error: ErrorInfo | None = None
        failed_attempts = 0
        status: Status = "success"
        try:
            outcome = await self._play()
        except asyncio.CancelledError:
            self._finish("cancelled", Outcome(reason="cancelled", turn=len(self.turns) - 1))
            raise
        except BackendError as exc:
            status, error, failed_attempts = "error", error_info(exc), exc.attempts
            outcome = Outcome(reason="error", turn=len(self.turns) - 1)
            self.log.error("conversation failed", error=str(exc))
        except Exception as exc:  # a bug must not take the other conversations down
            status, error = "error", error_info(exc)
            outcome = Outcome(reason="error", turn=len(self.turns) - 1)
            self.log.exception("conversation crashed")
        return self._finish(status, outcome, error, failed_attempts)

    @property
    def path(self) -> Path:
        assert self.recorder is not None
        return self.recorder.path

    def _finish(
        self,
        status: Status,
        outcome: Outcome,
        error: ErrorInfo | None = None,
        failed_attempts: int = 0,
    ) -> Result:
        assert self.recorder is not None
        end = self.recorder.end(status, outcome, error, failed_attempts)
        result = Result(self.path, self.recorder.run, end)
        self.observer.conversation_finished(ConversationFinished(result.run, end, self.path))
        self.log.info("conversation finished", status=status, **outcome.model_dump())
        return result


def _scripted_turn(agent: Agent, round_no: int) -> TurnRecord:
    stamp = now_iso()
    return TurnRecord(
        index=0,  # numbered by the recorder
        round=round_no,
        speaker=agent.name,
        model=agent.model,
        content=agent.opening or "",
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
        scripted=False,
        seed=request.config.seed,
        server=final.server,
        host=final.host if final.host and final.host != host else None,
    )
