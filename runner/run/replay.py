"""Replaying one conversation from its transcript, without the rest of its batch.

A transcript's ``run`` line holds everything a conversation was made of: the resolved
agents (personas, openings, options with the agent's seed), order, history window,
kickoff, end rules, the base seed and repeat index, the engines and hosts. From it a
:class:`ResolvedScenario` and a :class:`Plan` for that one repeat are rebuilt, so the
replay draws the same seeds and the same speaking order; on a deterministic engine it
says the same words. The scenario file is not read again: a replay is what was run, not
what the file says now.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from agents.backends import ENGINES
from agents.errors import ConfigError
from runner.console.live import LiveObserver
from runner.console.progress import PullProgress
from runner.console.summary import summary
from runner.model.pool import BackendPool
from runner.play.conversation import Plan, Result
from runner.play.events import Observer, Observers
from runner.play.seeds import derive_seed
from runner.run.orchestrator import iter_conversations
from runner.run.plan import RunPlan, preflight
from runner.run.tally import Tally
from runner.scenario.snapshot import ResolvedScenario, snapshot_of
from runner.settings import RunSettings
from runner.transcript import RunRecord, read_transcript


def scenario_of(
    run: RunRecord, backend: str | None = None, where: str = "<transcript>:1"
) -> ResolvedScenario:
    """The scenario as it was run, validated back from the run line (``where`` names it in
    errors). ``backend`` (``--backend``) replaces the recorded engines; the hosts the
    agents were played on go with the recorded engines only."""
    engines = {a.backend for a in run.agents}
    recorded = engines.pop() if len(engines) == 1 else None
    keep_hosts = backend is None or backend == recorded
    # Files written before run lines stored the resolved scenario whole: from its fields.
    data, prefix = (run.resolved, "resolved.") if run.resolved is not None else (_flat(run), "")
    # The engine it was played on, unless --backend names another: then it does not matter.
    data = {**data, "backend": recorded if backend is None else None, "hosts": []}
    scenario = snapshot_of(data, where, prefix=prefix)
    played = {a.name: a for a in run.agents}
    agents = tuple(
        replace(
            agent,
            host=played[agent.name].host
            if keep_hosts and agent.name in played and _remote(played[agent.name].backend)
            else None,
        )
        for agent in scenario.agents
    )
    overrides = scenario.overrides.model_copy(update={"rerun_of": run.conversation_id})
    return replace(
        scenario,
        source=run.source or "<transcript>",
        agents=agents,
        repeat=run.repeat,
        seed=run.base_seed,
        hash=run.scenario_hash,
        overrides=overrides,
        backend_set_by="the engine it was recorded on",
    )


def _flat(run: RunRecord) -> dict[str, Any]:
    """The resolved scenario from the run line's own fields, for files without ``resolved``.

    The agents' recorded options carry each agent's seed, so it is used as it was."""
    return {
        "name": run.scenario,
        "description": run.description,
        "source": run.source or "<transcript>",
        "agents": [
            {
                "name": a.name,
                "model": a.model,
                "persona": a.persona,
                "opening": a.opening,
                "max_turns": a.max_turns,
                "options": a.options,
            }
            for a in run.agents
        ],
        "order": run.order,
        "max_turns": run.max_turns,
        "end": run.end_rules,
        "history": run.history,
        "repeat": run.repeat,
        "seed": run.base_seed,
        "kickoff": run.kickoff if run.kickoff is not None else "Please begin.",
        "vars": dict(run.vars),
        "api_key_env": None,
        "overrides": run.overrides,
    }


def _remote(engine: str | None) -> bool:
    """Whether the recorded host says where to find the engine again."""
    return engine in ENGINES and ENGINES[engine].remote


def plan_of(run: RunRecord, scenario: ResolvedScenario) -> Plan:
    """The one conversation to play again: its repeat index and seed, as recorded. A
    tournament game's seed derives from its game id, not its repeat index; the replay
    keeps the game's labels, so it can be replayed in turn."""
    base = run.base_seed
    game = run.game_id
    if base is not None and derive_seed(base, game or run.repeat_index) != run.seed:
        which = f"game {game}" if game else f"repeat #{run.repeat_index}"
        raise ConfigError(
            f"seed {run.seed} is not the one base seed {base} gives {which}: the run line "
            "was edited, or written by another version"
        )
    labels = {
        key: value
        for key, value in (
            ("tournament", run.tournament),
            ("tournament_hash", run.tournament_hash),
            ("game_id", game),
        )
        if value is not None
    }
    seed_base = base if base is not None else run.seed
    # The motion it debated (a tournament game draws per pairing, not from its own seed).
    return Plan(scenario, run.repeat_index, run.seed, seed_base, labels=labels, motion=run.motion)


def load_run(path: str | Path) -> RunRecord:
    transcript = read_transcript(path)
    if transcript.run is None:
        raise ConfigError(f"{path}: no run line (the run was killed before it began)")
    return transcript.run


async def rerun(
    path: str | Path, settings: RunSettings, *, out: Console, err: Console, quiet: bool = False
) -> Result:
    """Play the conversation of the transcript at ``path`` again, into a new transcript."""
    run = load_run(path)
    scenario = scenario_of(run, settings.backend, where=f"{path}:1: run line")
    async with BackendPool(settings) as pool:
        plans = RunPlan([scenario])
        await plans.bind(pool)
        await preflight(plans, pull=settings.pull, progress=PullProgress(err))
        plan = plan_of(run, scenario)
        plan.models = plans.parts[0].models
        tally = Tally()
        display = Observer() if quiet else LiveObserver(out)
        results = [
            result
            async for result in iter_conversations(
                [plan], settings, max_conversations=1, observer=Observers(display, tally)
            )
        ]
    summary(out, results, tally)
    return results[0]
