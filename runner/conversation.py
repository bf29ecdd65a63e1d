"""One conversation: turns in order, agent views, end rules, and its transcript."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from agents.agent import Agent, Utterance
from agents.backends.base import ChatRequest, ModelInfo
from agents.errors import BackendError
from runner import __version__
from runner.generate import generate
from runner.plan import Plan, derive_seed
from runner.pool import BackendPool
from runner.rules import Outcome, Referee
from runner.settings import RunSettings
from runner.transcript import SCHEMA_VERSION, TranscriptWriter

log = structlog.get_logger("sparring.conversation")


def now_iso() -> str:
    return iso(time.time())


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class Observer:
    """Hooks for a live display. Every method is optional; the default does nothing."""

    def conversation_started(self, conv: Conversation) -> None: ...
    def turn_started(self, conv: Conversation, speaker: str) -> None: ...
    def delta(self, conv: Conversation, speaker: str, text: str) -> None: ...
    def retrying(
        self, conv: Conversation, speaker: str, error: BackendError, wait: float
    ) -> None: ...
    def turn_finished(self, conv: Conversation, record: dict[str, Any]) -> None: ...
    def conversation_finished(self, conv: Conversation, record: dict[str, Any]) -> None: ...


@dataclass(slots=True)
class TurnState:
    utterance: Utterance
    record: dict[str, Any]


@dataclass(slots=True)
class Result:
    scenario: str
    repeat_index: int
    path: Path
    status: str
    outcome: dict[str, Any]
    turns: int
    error: dict[str, Any] | None = None


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
        self.model_infos = model_infos or {}
        self.agents = list(self.scenario.agents)
        self.referee = Referee(self.scenario.end, [a.name for a in self.agents])
        self.rng = random.Random(plan.seed)
        self.turns: list[TurnState] = []
        self.spoken: dict[str, int] = {a.name: 0 for a in self.agents}
        self.options = {a.name: self._resolved_options(a) for a in self.agents}
        self.writer: TranscriptWriter | None = None
        self.log = log.bind(
            run_id=run_id,
            conversation=self.conversation_id,
            scenario=self.scenario.name,
            repeat=plan.repeat_index,
        )

    def _resolved_options(self, agent: Agent) -> dict[str, Any]:
        options = dict(agent.options)
        # An explicit seed is kept as written; otherwise each agent gets its own seed
        # derived from the run's, so repeats differ and every run can be replayed.
        options.setdefault("seed", derive_seed(self.plan.seed, agent.name))
        return options

    @property
    def path(self) -> Path | None:
        return self.writer.path if self.writer else None

    # ------------------------------------------------------------------ records

    def _run_record(self) -> dict[str, Any]:
        scenario = self.scenario
        first = self.plan.bindings[self.agents[0].name]
        agents = []
        for agent in self.agents:
            binding = self.plan.bindings[agent.name]
            info = self.model_infos.get((id(binding.backend), agent.model))
            agents.append(
                {
                    "name": agent.name,
                    "model": agent.model,
                    "model_digest": info.digest if info else None,
                    "persona": agent.persona,
                    "opening": agent.opening,
                    "max_turns": agent.max_turns,
                    "options": self.options[agent.name],
                    "backend": binding.choice.name,
                    "host": binding.backend.host,
                }
            )
        return {
            "type": "run",
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "conversation_id": self.conversation_id,
            "scenario": scenario.name,
            "description": scenario.description,
            "source": scenario.source,
            "scenario_hash": scenario.hash,
            "repeat_index": self.plan.repeat_index,
            "repeat": scenario.repeat,
            "seed": self.plan.seed,
            "base_seed": self.plan.base_seed,
            "order": scenario.order,
            "history": scenario.history,
            "max_turns": scenario.max_turns,
            "end_rules": [rule.model_dump(exclude_none=True) for rule in scenario.end],
            "kickoff": scenario.kickoff,
            "vars": scenario.vars,
            "agents": agents,
            "backend": first.choice.name,
            "backend_reason": first.choice.reason,
            "host": first.backend.host,
            "timeouts": {
                "connect_s": self.settings.timeouts.connect,
                "first_token_s": self.settings.timeouts.first_token,
                "reply_s": self.settings.timeouts.reply,
            },
            "sparring_version": __version__,
            "started_at": now_iso(),
        }

    def _end_record(
        self, status: str, outcome: Outcome, started: float, error: dict[str, Any] | None
    ) -> dict[str, Any]:
        generated = [t.record for t in self.turns if not t.record["scripted"]]
        totals = {
            "turns": len(self.turns),
            "generated_turns": len(generated),
            "scripted_turns": len(self.turns) - len(generated),
            "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in generated),
            "completion_tokens": sum(r["completion_tokens"] or 0 for r in generated),
            "latency_ms": round(sum(r["latency_ms"] or 0 for r in generated), 3),
            "retries": sum(r["attempts"] - 1 for r in generated),
        }
        record: dict[str, Any] = {
            "type": "end",
            "status": status,
            "outcome": outcome.to_dict(),
            "turns": len(self.turns),
            "totals": totals,
            "ended_at": now_iso(),
            "duration_s": round(time.monotonic() - started, 3),
        }
        if error is not None:
            record["error"] = error
        return record

    # ------------------------------------------------------------------ turns

    def _history(self) -> list[Utterance]:
        return [t.utterance for t in self.turns]

    @staticmethod
    def _round_view(turns: list[TurnState], agent: Agent) -> list[Utterance]:
        """Simultaneous rounds: per round, the agent's own answer, then everyone else's.

        The agents answered at the same time, so no order within a round is real; putting
        one's own answer first makes each round one assistant + one user message.
        """
        ordered = sorted(
            turns, key=lambda t: (t.record["round"], t.utterance.speaker != agent.name)
        )
        return [t.utterance for t in ordered]

    async def _take_turn(self, agent: Agent, round_no: int, history: list[Utterance]) -> TurnState:
        self.observer.turn_started(self, agent.name)
        binding = self.plan.bindings[agent.name]
        head = {"round": round_no, "speaker": agent.name, "model": agent.model}
        if agent.opening is not None and self.spoken[agent.name] == 0:
            stamp = now_iso()
            record: dict[str, Any] = {
                **head,
                "content": agent.opening,
                "started_at": stamp,
                "ended_at": stamp,
                "ttft_ms": None,
                "latency_ms": None,
                "prompt_tokens": None,
                "completion_tokens": None,
                "done_reason": None,
                "attempts": 0,
                "scripted": True,
            }
            self.observer.delta(self, agent.name, agent.opening)
        else:
            window = self.scenario.history if isinstance(self.scenario.history, int) else None
            messages = agent.view(
                history,
                label_others=len(self.agents) > 2,
                window=window,
                kickoff=self.scenario.kickoff,
            )
            # A fixed seed on every request would restart the same random sequence each turn
            # (and tiny models then repeat themselves word for word): each turn gets its own
            # seed, derived from the agent's and its turn number, so runs still replay.
            options = dict(self.options[agent.name])
            options["seed"] = derive_seed(options["seed"], self.spoken[agent.name])
            request = ChatRequest(agent.model, messages, options)
            async with self.pool.limit(binding.backend, agent.model):
                result = await generate(
                    binding.backend,
                    request,
                    timeouts=self.settings.timeouts,
                    retry=self.settings.retry,
                    on_delta=lambda text: self.observer.delta(self, agent.name, text),
                    on_retry=lambda exc, _n, wait: self.observer.retrying(
                        self, agent.name, exc, wait
                    ),
                    rng=self.rng,
                )
            final = result.final
            record = {
                **head,
                "content": result.text,
                "started_at": iso(result.started_at),
                "ended_at": iso(result.ended_at),
                "ttft_ms": None if result.ttft_ms is None else round(result.ttft_ms, 3),
                "latency_ms": round(result.latency_ms, 3),
                "prompt_tokens": final.prompt_tokens,
                "completion_tokens": final.completion_tokens,
                "done_reason": final.done_reason,
                "attempts": result.attempts,
                "scripted": False,
                "seed": options["seed"],
            }
            if final.server:
                record["server"] = final.server
            if final.host and final.host != binding.backend.host:
                record["host"] = final.host
        self.spoken[agent.name] += 1
        return TurnState(Utterance(agent.name, record["content"]), record)

    def _commit(self, state: TurnState) -> Outcome | None:
        """Number, write and judge a finished turn."""
        index = len(self.turns)
        record = {"type": "turn", "index": index, **state.record}
        state.record = record
        self.turns.append(state)
        assert self.writer is not None
        self.writer.write(record)
        self.observer.turn_finished(self, record)
        if record["scripted"]:
            return None  # a scripted line is the scenario speaking, not the agent conceding
        return self.referee.judge(record["speaker"], record["content"], index)

    def _can_speak(self, agent: Agent) -> bool:
        return agent.max_turns is None or self.spoken[agent.name] < agent.max_turns

    def _limit_outcome(self) -> Outcome | None:
        if len(self.turns) >= self.scenario.max_turns:
            return Outcome(None, None, "max_turns", turn=len(self.turns) - 1)
        if not any(self._can_speak(a) for a in self.agents):
            return Outcome(None, None, "agent_turn_limits", turn=len(self.turns) - 1)
        return None

    async def _play(self) -> Outcome:
        round_no = 0
        while True:
            round_no += 1
            if self.scenario.order == "simultaneous":
                active = [a for a in self.agents if self._can_speak(a)]
                active = active[: self.scenario.max_turns - len(self.turns)]
                snapshot = list(self.turns)
                try:
                    async with asyncio.TaskGroup() as group:
                        tasks = [
                            group.create_task(
                                self._take_turn(a, round_no, self._round_view(snapshot, a))
                            )
                            for a in active
                        ]
                except ExceptionGroup as failed:
                    # One agent's failure ends the round (the others were cancelled); report it
                    # like a failure in a sequential round.
                    raise failed.exceptions[0] from None
                outcome: Outcome | None = None
                for task in tasks:  # written in agent order; the first rule to fire wins
                    fired = self._commit(task.result())
                    outcome = outcome or fired
                if outcome is not None:
                    return outcome
                if (limit := self._limit_outcome()) is not None:
                    return limit
                continue
            speakers = list(self.agents)
            if self.scenario.order == "random":
                self.rng.shuffle(speakers)
            for agent in speakers:
                if not self._can_speak(agent):
                    continue
                fired = self._commit(await self._take_turn(agent, round_no, self._history()))
                if fired is not None:
                    return fired
                if (limit := self._limit_outcome()) is not None:
                    return limit

    async def run(self) -> Result:
        started = time.monotonic()
        self.writer = TranscriptWriter.create(
            self.settings.out_dir,
            f"{datetime.now(UTC):%Y%m%d-%H%M%S}_{self.scenario.name}_"
            f"{self.plan.repeat_index:03d}_{self.conversation_id}",
        )
        self.writer.write(self._run_record())
        # Each conversation is its own task with its own context: every log line inside it,
        # retries in generate() included, carries these ids.
        structlog.contextvars.bind_contextvars(
            run_id=self.run_id, conversation=self.conversation_id, scenario=self.scenario.name
        )
        self.observer.conversation_started(self)
        self.log.info("conversation started", transcript=str(self.writer.path), seed=self.plan.seed)
        status, error = "success", None
        try:
            outcome = await self._play()
        except asyncio.CancelledError:
            status, outcome = (
                "cancelled",
                Outcome(None, None, "cancelled", turn=len(self.turns) - 1),
            )
            self._finish(status, outcome, started, None)
            raise
        except BackendError as exc:
            status, error = "error", exc.to_dict()
            outcome = Outcome(None, None, "error", turn=len(self.turns) - 1)
            self.log.error("conversation failed", error=str(exc))
        except Exception as exc:  # a bug must not take the other conversations down
            status, error = "error", _error_dict(exc)
            outcome = Outcome(None, None, "error", turn=len(self.turns) - 1)
            self.log.exception("conversation crashed")
        return self._finish(status, outcome, started, error)

    def _finish(
        self, status: str, outcome: Outcome, started: float, error: dict[str, Any] | None
    ) -> Result:
        record = self._end_record(status, outcome, started, error)
        assert self.writer is not None
        self.writer.write(record)
        self.writer.close()
        self.observer.conversation_finished(self, record)
        self.log.info("conversation finished", status=status, **outcome.to_dict())
        return Result(
            scenario=self.scenario.name,
            repeat_index=self.plan.repeat_index,
            path=self.writer.path,
            status=status,
            outcome=outcome.to_dict(),
            turns=len(self.turns),
            error=error,
        )


def _error_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, BackendError):
        return exc.to_dict()
    return {"type": type(exc).__name__, "kind": "internal", "message": str(exc), "retryable": False}
