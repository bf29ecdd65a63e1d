"""A debate's motion: drawn per conversation, seeded, and filled into the scenario's texts."""

from __future__ import annotations

import random
from dataclasses import replace

from runner.play.seeds import derive_seed
from runner.scenario.schema import substitute
from runner.scenario.snapshot import ResolvedScenario


def draw_motion(motions: tuple[str, ...], seed: int) -> str:
    """The motion of the conversation (or tournament game) with this seed, drawn alone."""
    return motions[random.Random(derive_seed(seed, "motion")).randrange(len(motions))]


def repeat_motion(motions: tuple[str, ...], base_seed: int, repeat_index: int) -> str:
    """The motion of a run's repeat ``repeat_index``: repeats go through the motions in
    rounds, each round a seeded shuffle of all of them, so every motion is debated once
    before any is debated twice. It depends on the base seed and the index only: a longer
    run of the same scenario begins with the same motions."""
    rounds, at = divmod(repeat_index, len(motions))
    order = list(range(len(motions)))
    random.Random(derive_seed(base_seed, "motions", rounds)).shuffle(order)
    return motions[order[at]]


def staged(scenario: ResolvedScenario, motion: str) -> ResolvedScenario:
    """The scenario with ``{motion}`` filled in. Texts filled again later (instructions
    per speaker, the moderator's lines per phase) keep their ``{{``/``}}`` for that pass."""

    def fill(text: str, *, later: bool = False) -> str:
        return substitute(text, {"motion": motion}, keep_escapes=later)[0]

    agents = tuple(
        replace(
            a,
            persona=fill(a.persona),
            opening=fill(a.opening) if a.opening is not None else None,
        )
        for a in scenario.agents
    )
    phases = tuple(
        p.model_copy(
            update={
                "instruction": fill(p.instruction, later=True) if p.instruction else None,
                "script": {k: fill(v) for k, v in p.script.items()} if p.script else None,
            }
        )
        for p in scenario.phases
    )
    moderator = scenario.moderator
    if moderator is not None:
        moderator = moderator.model_copy(
            update={
                "persona": fill(moderator.persona),
                "announce": fill(moderator.announce, later=True),
                "closing": fill(moderator.closing, later=True) if moderator.closing else None,
            }
        )
    return replace(
        scenario,
        description=fill(scenario.description),
        kickoff=fill(scenario.kickoff),
        agents=agents,
        phases=phases,
        moderator=moderator,
    )
