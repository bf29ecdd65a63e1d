"""The preview: each agent's first request, exactly as its engine would receive it.

The requests are not rebuilt here: the scenario's first conversation is played by the
runner itself (:class:`runner.play.conversation.Conversation`, so seats, turn order, history
windows, name prefixes, kickoff and per-turn seeds all come from the code that runs real
conversations), with every engine replaced by a stand-in that records what it is sent and
answers a placeholder. Once every agent has sent its first request the conversation is
stopped; its transcript goes to a temporary folder that is then removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.text import Text

from agents.backends import engine_label
from agents.backends.base import (
    Backend,
    ChatEvent,
    ChatRequest,
    Delta,
    Final,
    ModelInfo,
    ProgressCallback,
)
from runner.console import safe
from runner.console.summary import print_plan
from runner.model.generate import RetryPolicy
from runner.model.handle import Model
from runner.model.pool import BackendPool
from runner.play.conversation import Conversation, Plan
from runner.run.orchestrator import bounded, default_max_conversations
from runner.run.plan import RunPlan, ScenarioPlan, preflight
from runner.scenario.schema import ResolvedScenario
from runner.settings import RunSettings


@dataclass(frozen=True, slots=True)
class FirstRequest:
    agent: str
    turn: int  # the index of the turn it asks for
    request: ChatRequest
    backend: Backend  # the engine it would go to


def placeholder(agent: str, n: int) -> str:
    return f"<{agent}'s reply {n}>"


class StandIn:
    """Takes an engine's place: records each request, answers a placeholder."""

    def __init__(self, real: Backend, seen: dict[str, FirstRequest], done: asyncio.Event, n: int):
        self.real = real
        self.name, self.host = real.name, real.host
        self.can_pull, self.supported_options = False, real.supported_options
        self.conversations_per_slot = real.conversations_per_slot
        self._seen, self._done, self._agents = seen, done, n
        self._replies: dict[str, int] = {}
        self.turns: Callable[[], int] = lambda: 0  # turns recorded so far

    def connection_key(self, model: str) -> str:
        return f"preview|{id(self)}"

    def default_concurrency(self) -> int:
        return 64  # nothing is sent anywhere

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        if request.session is None:  # a judge's vote: no agent's turn, so not shown
            yield Delta('{"vote": "undecided", "reason": "not asked: a preview"}')
            yield Final(done_reason="stop")
            return
        # Sessions are "<conversation id>/<agent name>"; the id is hex, names may hold "/".
        agent = (request.session or "/?").split("/", 1)[1]
        if agent not in self._seen:
            self._seen[agent] = FirstRequest(agent, self.turns(), request, self.real)
        if len(self._seen) == self._agents:
            self._done.set()
        self._replies[agent] = count = self._replies.get(agent, 0) + 1
        yield Delta(placeholder(agent, count))
        yield Final(done_reason="stop")

    async def list_models(self) -> list[ModelInfo]:
        return []

    async def find_model(self, name: str) -> ModelInfo:
        return ModelInfo(name=name)

    async def pull(self, model: str, progress: ProgressCallback) -> None:
        return None

    async def release(self, model: str) -> None:
        """Nothing is loaded: nothing to free."""

    async def aclose(self) -> None:
        return None


async def first_requests(
    part: ScenarioPlan, settings: RunSettings
) -> tuple[Plan, list[FirstRequest]]:
    """The first request of every agent that gets to speak in the scenario's conversation #0."""
    scenario = part.scenario
    seen: dict[str, FirstRequest] = {}
    done = asyncio.Event()
    stand_ins: dict[int, StandIn] = {}  # by the engine each stands in for
    models: dict[str, Model] = {}
    for name, model in part.models.items():
        real = model.backend
        stand_in = stand_ins.setdefault(id(real), StandIn(real, seen, done, len(scenario.agents)))
        # Nothing is sent anywhere: no limit worth waiting on, and nothing to retry.
        models[name] = replace(
            model, backend=stand_in, limit=asyncio.Semaphore(64), retry=RetryPolicy(attempts=1)
        )
    plan = replace(part.plan(0), models=models)
    with tempfile.TemporaryDirectory(prefix="sparring-preview-") as folder:
        quiet = replace(settings, out_dir=Path(folder))
        conversation = Conversation(plan, quiet, run_id="preview", announce=False)
        for stand_in in stand_ins.values():
            stand_in.turns = lambda: len(conversation.turns)
        task = asyncio.create_task(conversation.run())
        waiting = asyncio.create_task(done.wait())
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, waiting):
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
    return plan, list(seen.values())  # in the order they are sent


def print_requests(
    out: Console, scenario: ResolvedScenario, plan: Plan, requests: Sequence[FirstRequest]
) -> None:
    window = scenario.history if isinstance(scenario.history, int) else None
    history = f"the last {window} turns" if window else "all turns"
    names = "prefixed with their names" if len(scenario.agents) > 2 else "as they are"
    out.print(
        Text.assemble(
            safe(scenario.name, "bold"),
            safe(
                f"  first requests of conversation #{plan.repeat_index}, seed {plan.seed} "
                f"(base seed {plan.base_seed})"
            ),
        )
    )
    out.print(
        safe(
            f"history: {history}; others' turns {names}; kickoff {scenario.kickoff!r}; "
            f"replies not generated yet are shown as {placeholder('NAME', 1)}",
            "dim",
        )
    )
    for first in requests:
        _print_request(out, first)
    silent = [a.name for a in scenario.agents if a.name not in {f.agent for f in requests}]
    for name in silent:
        out.print(safe(f"\n{name} sends no request: the conversation ends before it generates"))
    out.print()


def _print_request(out: Console, first: FirstRequest) -> None:
    request, backend = first.request, first.backend
    out.print()
    out.print(
        Text.assemble(
            ("── ", "dim"),
            safe(first.agent, "bold"),
            safe(f", turn {first.turn} → {engine_label(backend)}, model {request.model}"),
        )
    )
    config = request.config
    sent = ", ".join(f"{k}={v!r}" for k, v in config.set_fields().items()
                     if k in backend.supported_options)  # fmt: skip
    unsent = config.unsupported(backend.supported_options)
    out.print(safe(f"options: {sent or 'none (the engine defaults)'}", "dim"))
    if unsent:
        out.print(safe(f"not sent (the engine has no such setting): {', '.join(unsent)}", "dim"))
    for message in request.messages:
        out.print(safe(f"[{message['role']}]", "bold"))
        out.print(safe("  " + message["content"].replace("\n", "\n  ")))


async def preview(
    scenarios: Sequence[ResolvedScenario], settings: RunSettings, out: Console
) -> None:
    """Print every scenario's first requests, then check the models and print the plan.

    The requests are printed before the model check, so a scenario can be previewed on a
    machine that does not have its models yet; missing models are still an error after.
    """
    async with BackendPool(settings) as pool:
        run = RunPlan(scenarios)
        await run.bind(pool)
        for part in run.parts:
            plan, requests = await first_requests(part, settings)
            print_requests(out, part.scenario, plan, requests)
        await preflight(run)
        limit = settings.max_conversations or default_max_conversations(run, pool)
        print_plan(out, run, bounded(limit))
