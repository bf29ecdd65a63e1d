"""The debate parts of a scenario beyond its phases: the moderator, as the schema reads it
and as a resolved scenario carries it."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agents.agent import Agent
from agents.backends.config import GenerateConfig
from runner.scenario.ending import _Strict
from runner.scenario.limits import MAX_NAME

DEFAULT_ANNOUNCE = "{phase}. {speakers}, the floor is yours."
# What a phase's announcement may name; filled in as each phase starts.
ANNOUNCE_FIELDS = ("phase", "speakers", "instruction", "turns")
MODERATOR_OPTIONS = GenerateConfig(temperature=0.3, num_predict=80)


class ModeratorSpec(_Strict):
    """Who chairs the debate: announces each phase, scripted or in its model's words. It
    never counts as a debater: not for winners, metrics, end rules or tournament seats."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)] = Field(
        "Moderator", description="its label in transcripts; not an agent's name"
    )
    model: str | None = Field(
        None, description="a model to say the announcements in its own words; else said verbatim"
    )
    persona: str | None = Field(None, description="its system prompt (with a model)")
    announce: str = Field(
        DEFAULT_ANNOUNCE,
        description="said before each phase; {phase}, {speakers}, {instruction}, {turns} and "
        "the scenario's variables are filled in",
    )
    closing: str | None = Field(None, description="said after the last phase")
    options: GenerateConfig = Field(
        GenerateConfig(),
        description="its generation options (with a model), merged over temperature 0.3 "
        "and num_predict 80",
    )


class Moderator(_Strict):
    """A resolved moderator: variables substituted, the phase fields still to fill."""

    name: str
    model: str | None = None
    persona: str = ""
    announce: str = DEFAULT_ANNOUNCE
    closing: str | None = None
    options: GenerateConfig = MODERATOR_OPTIONS

    @property
    def agent(self) -> Agent | None:
        """Its seat at the table when a model speaks for it; None when it only reads lines."""
        if self.model is None:
            return None
        return Agent(name=self.name, model=self.model, persona=self.persona, options=self.options)
