"""One conversation: seats take turns, the referee judges, the recorder writes it down."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from agents.agent import Agent
from agents.errors import BackendError
from runner import __version__
from runner.model.handle import Model
from runner.play import jury as voting
from runner.play.choice import ORDERS
from runner.play.events import (
    ConversationFinished,
    ConversationStarted,
    Observer,
    PhaseStarted,
    TurnFinished,
    VoteCast,
)
from runner.play.motion import draw_motion, staged
from runner.play.recorder import Recorder, now_iso
from runner.play.rules import Referee
from runner.play.seat import Cue, Seat, Table, speak_together
from runner.play.turns import turn_order
from runner.scenario.debate import Moderator, Stage
from runner.scenario.phases import Phase
from runner.scenario.schema import substitute
from runner.scenario.snapshot import ResolvedScenario
from runner.settings import RunSettings
from runner.transcript import (
    AgentInfo,
    EndRecord,
    ErrorInfo,
    Outcome,
    PhaseRecord,
    RunRecord,
    Status,
    TimeoutsInfo,
    TranscriptWriteError,
    TurnRecord,
)

log = structlog.get_logger("sparring.conversation")


@dataclass(slots=True)
class Plan:
    """One conversation to run: a scenario, its repeat index and seed, its models."""

    scenario: ResolvedScenario
    repeat_index: int
    seed: int
    base_seed: int  # what ``seed`` was derived from: --seed BASE replays this run
    models: dict[str, Model] = field(default_factory=dict)  # agent name -> its model
    ordinal: int = 0  # position in its run's plan
    # A tournament game: its transcript's file name (without .jsonl) and its labels
    # (tournament, tournament_hash, game_id) for the run line.
    stem: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # The motion debated, when the scenario has motions; None: drawn from ``seed``.
    motion: str | None = None


@dataclass(slots=True)
class Result:
    """A finished conversation: its transcript's path, first and last records."""

    path: Path
    run: RunRecord
    end: EndRecord
    ordinal: int = 0  # the plan's position in its run

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
        settings: RunSettings,
        *,
        run_id: str,
        observer: Observer | None = None,
        announce: bool = True,
    ) -> None:
        """``announce``: log the conversation's start and finish (not for a preview, where
        nothing runs: its transcript is a temporary file, its outcome made up)."""
        self.plan = plan
        self.announce = announce
        self.motion: str | None = None
        self.scenario = plan.scenario
        if plan.scenario.motions:
            self.motion = plan.motion or draw_motion(plan.scenario.motions, plan.seed)
            self.scenario = staged(plan.scenario, self.motion)
        self.settings = settings
        self.run_id = run_id
        self.conversation_id = secrets.token_hex(6)
        self.observer = observer or Observer()
        self.agents = list(self.scenario.agents)
        self.seats = {a.name: Seat(a, plan.models[a.name], plan.seed) for a in self.agents}
        self.chair = _chair(self.scenario, plan)
        self.table = Table(self.conversation_id, self.scenario, self.observer)
        self.referee = Referee(self.scenario.end, [a.name for a in self.agents])
        self.order = turn_order(self.scenario.order, plan.seed)
        self.recorder: Recorder | None = None
        self.log = log.bind(
            run_id=run_id,
            conversation=self.conversation_id,
            scenario=self.scenario.name,
            repeat=plan.repeat_index,
        )

    # ------------------------------------------------------------------ turns

    @property
    def turns(self) -> list[TurnRecord]:
        return self.recorder.turns if self.recorder else []

    async def _speak_together(self, agents: list[Agent], round_no: int) -> list[TurnRecord]:
        """A simultaneous round: every speaker answers the same turns, concurrently."""
        snapshot = list(self.turns)
        seats = [(self.seats[a.name], self.order.history(snapshot, a)) for a in agents]
        return await speak_together(seats, round_no, self.table)

    def _commit(self, record: TurnRecord) -> Outcome | None:
        """Write a finished turn, tell the observers, and judge it."""
        assert self.recorder is not None
        sides = self.scenario.sides
        if record.role is None and sides is not None:
            record = record.model_copy(update={"role": sides.of(record.speaker)})
        record = self.recorder.turn(record)
        self.observer.turn_finished(TurnFinished(record))
        if record.scripted or record.role == "moderator":
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
        if self.scenario.phases:
            return await self._play_phases()
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
                record = await self.seats[agent.name].speak(round_no, history, self.table)
                outcome = self._commit(record)
                if outcome is not None:
                    return outcome
                if (limit := self._limit_outcome()) is not None:
                    return limit

    async def _play_phases(self) -> Outcome:
        """Each phase in turn: its speakers in its order, ``turns`` rounds of them."""
        assert self.recorder is not None
        round_no = 0
        for p, phase in enumerate(self.scenario.phases):
            budget = phase.budget.model_dump(exclude_none=True) if phase.budget else None
            record = PhaseRecord(
                index=p, name=phase.name, speakers=list(phase.speakers), turns=phase.turns,
                instruction=_instruction(phase, None), budget=budget, first_turn=0,
                started_at=now_iso(),
            )  # fmt: skip
            self.observer.phase_started(PhaseStarted(self.recorder.phase(record)))
            if self.chair is not None:
                await self._moderate(round_no, p, self.chair.announcement(phase))
            script = phase.script or {}
            for _ in range(phase.turns):
                round_no += 1
                for name in phase.speakers:
                    seat = self.seats[name]
                    if not seat.can_speak():
                        continue  # at its own turn limit: the phase goes on without it
                    if self._debated() >= self.scenario.max_turns:
                        return Outcome(reason="max_turns", turn=len(self.turns) - 1)
                    side = self.scenario.sides.of(name) if self.scenario.sides else None
                    instruction = _instruction(phase, side)
                    cue = Cue(p, instruction, phase.budget, script.get(name))
                    history = self.order.history(self.turns, seat.agent)
                    turn = await seat.speak(round_no, history, self.table, cue)
                    outcome = self._commit(turn)
                    if outcome is not None:
                        return outcome
        if self.chair is not None and self.chair.moderator.closing:
            await self._moderate(round_no, len(self.scenario.phases) - 1, self.chair.closing())
        return Outcome(reason="phases", turn=len(self.turns) - 1)

    async def _vote(self, stage: Stage) -> None:
        """Every judge votes at ``stage``, in both presentation orders, one record each."""
        jury, sides = self.scenario.jury, self.scenario.sides
        if jury is None or sides is None or stage not in jury.stages:
            return
        assert self.recorder is not None
        motion = self.motion or self.scenario.description
        debaters = {a.model for a in self.agents}
        for juror in jury.jurors:
            for order in ORDERS:
                messages = voting.prompt(stage, order, motion, jury, self.turns, sides)
                record = await voting.cast(
                    self.plan.models[juror.name], juror, jury, stage, order, messages,
                    seed=self.plan.seed, self_judged=juror.model in debaters,
                )  # fmt: skip
                self.observer.vote_cast(VoteCast(self.recorder.vote(record)))

    async def _judged(self, outcome: Outcome) -> Outcome:
        """After the debate the jury votes; it decides a debate no end rule decided."""
        jury, sides = self.scenario.jury, self.scenario.sides
        if jury is None or sides is None:
            return outcome
        await self._vote("after")
        assert self.recorder is not None
        decision = voting.verdict(jury, self.recorder.votes, sides, len(self.turns) - 1)
        if outcome.reason == "end_rule":
            return outcome.model_copy(update={"votes": decision.votes})
        return decision

    def _debated(self) -> int:
        """Turns the debaters took: the moderator's lines are not turns of the debate."""
        return sum(1 for turn in self.turns if turn.role != "moderator")

    async def _moderate(self, round_no: int, phase: int, text: str) -> None:
        """The moderator says ``text``: verbatim, or in its model's words."""
        assert self.chair is not None
        seat = self.chair.seat
        if seat.model is None:
            cue = Cue(phase, line=text)
        else:
            cue = Cue(phase, instruction=f"{CHAIR_INSTRUCTION} {text}")
        history = self.order.history(self.turns, seat.agent)
        turn = await seat.speak(round_no, history, self.table, cue)
        self._commit(turn.model_copy(update={"role": "moderator"}))

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> Result:
        """Play the conversation to its end and write it down.

        A failing backend ends only this conversation (its error is recorded); failing to
        write the transcript (disk full) is raised as TranscriptWriteError after recording
        it where the file still takes it, because every other conversation would fail too.
        """
        agents = [seat.info() for seat in self.seats.values()]
        chair = self.chair.seat.info() if self.chair is not None else None
        first = self.seats[self.agents[0].name].model
        assert first is not None  # a debater always has its model
        record = run_record(
            self.plan, agents, first, self.settings,
            run_id=self.run_id, conversation_id=self.conversation_id, moderator=chair,
            motion=self.motion, description=self.scenario.description,
        )  # fmt: skip
        self.recorder = Recorder(self.settings.out_dir, record, self.plan.stem)
        # Each conversation is its own task with its own context: every log line inside it,
        # retries in generate() included, carries these ids.
        structlog.contextvars.bind_contextvars(
            run_id=self.run_id, conversation=self.conversation_id, scenario=self.scenario.name
        )
        self.observer.conversation_started(ConversationStarted(self.recorder.run, self.path))
        if self.announce:
            self.log.info("conversation started", transcript=str(self.path), seed=self.plan.seed)
        error: ErrorInfo | None = None
        failed_attempts = 0
        status: Status = "success"
        try:
            await self._vote("before")
            outcome = await self._play()
            outcome = await self._judged(outcome)
        except asyncio.CancelledError:
            with contextlib.suppress(TranscriptWriteError):  # the file stays valid, unfinished
                self._finish("cancelled", Outcome(reason="cancelled", turn=len(self.turns) - 1))
            raise
        except TranscriptWriteError as exc:
            error = ErrorInfo(type=type(exc).__name__, kind="transcript_write", message=str(exc))
            with contextlib.suppress(TranscriptWriteError):
                self._finish("error", Outcome(reason="error", turn=len(self.turns) - 1), error)
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
        result = Result(self.path, self.recorder.run, end, self.plan.ordinal)
        finished = ConversationFinished(result.run, end, self.path, self.plan.ordinal)
        self.observer.conversation_finished(finished)
        if self.announce:
            self.log.info("conversation finished", status=status, **outcome.model_dump())
        return result


CHAIR_INSTRUCTION = (
    "You chair this debate. In one or two sentences of your own, tell the room what comes "
    "next; do not argue either side. What comes next:"
)


class Chair:
    """The moderator at the table: its seat, and the lines it is to say."""

    def __init__(self, moderator: Moderator, seat: Seat) -> None:
        self.moderator = moderator
        self.seat = seat

    def announcement(self, phase: Phase) -> str:
        values = {
            "phase": phase.name,
            "speakers": _listing(phase.speakers),
            "instruction": phase.instruction or "",
            "turns": phase.turns,
        }
        return substitute(self.moderator.announce, values)[0].strip()

    def closing(self) -> str:
        return substitute(self.moderator.closing or "", {})[0]


def _instruction(phase: Phase, side: str | None) -> str | None:
    """The phase's instruction for a speaker on ``side`` (None: as the phase shows it)."""
    if phase.instruction is None:
        return None
    return substitute(phase.instruction, {"side": side or "{side}"})[0]


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _chair(scenario: ResolvedScenario, plan: Plan) -> Chair | None:
    moderator = scenario.moderator
    if moderator is None:
        return None
    agent = moderator.agent or Agent(name=moderator.name, model="")
    return Chair(moderator, Seat(agent, plan.models.get(moderator.name), plan.seed))


def run_record(
    plan: Plan,
    agents: list[AgentInfo],
    first: Model,
    settings: RunSettings,
    *,
    run_id: str,
    conversation_id: str,
    moderator: AgentInfo | None = None,
    motion: str | None = None,
    description: str | None = None,
) -> RunRecord:
    """The run line: the resolved scenario, seeds, agents and engines of one conversation."""
    scenario, timeouts = plan.scenario, settings.timeouts
    return RunRecord(
        run_id=run_id,
        conversation_id=conversation_id,
        scenario=scenario.name,
        description=description if description is not None else scenario.description,
        motion=motion,
        sides=scenario.sides.model_dump() if scenario.sides else None,
        source=scenario.source,
        scenario_hash=scenario.hash,
        repeat_index=plan.repeat_index,
        repeat=scenario.repeat,
        seed=plan.seed,
        base_seed=plan.base_seed,
        order=scenario.order,
        history=scenario.history,
        max_turns=scenario.max_turns,
        kickoff=scenario.kickoff,
        end_rules=[rule.model_dump(exclude_none=True) for rule in scenario.end],
        vars=scenario.vars,
        overrides=scenario.overrides.recorded(),
        agents=agents,
        moderator=moderator,
        resolved=scenario.snapshot(),
        backend=first.choice.name,
        backend_reason=first.choice.reason,
        host=first.backend.host,
        timeouts=TimeoutsInfo(
            connect_s=timeouts.connect, first_token_s=timeouts.first_token, reply_s=timeouts.reply
        ),
        sparring_version=__version__,
        started_at=now_iso(),
        **plan.labels,
    )
