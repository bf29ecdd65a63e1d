"""The debate parts of a scenario beyond its phases: the moderator, as the schema reads it
and as a resolved scenario carries it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BeforeValidator, Field

from agents.agent import Agent
from agents.backends.config import GenerateConfig
from runner.scenario.ending import _Strict
from runner.scenario.limits import MAX_NAME
from runner.scenario.source import Unreadable, read_text

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


# ---------------------------------------------------------------------------- motions, sides

Side = Literal["proposition", "opposition"]
SIDES: tuple[Side, Side] = ("proposition", "opposition")
MAX_MOTIONS = 10_000
MAX_MOTION = 1_000  # characters in one motion
Motion = Annotated[str, Field(min_length=1, max_length=MAX_MOTION)]


class MotionsFile(_Strict):
    """Motions kept in a file of their own."""

    file: Annotated[str, Field(min_length=1)] = Field(
        description="relative to the scenario: one motion per line (blank lines and lines "
        "starting with # skipped), or a YAML or JSON list (.yaml, .yml, .json)"
    )


class Sides(_Strict):
    """Which agent argues which side: sides are roles, so a tournament's seat swap swaps them."""

    proposition: str = Field(description="the agent arguing for the motion")
    opposition: str = Field(description="the agent arguing against it")

    def of(self, agent: str) -> Side | None:
        return (
            "proposition"
            if agent == self.proposition
            else ("opposition" if agent == self.opposition else None)
        )


def read_motions(path: Path) -> list[str]:
    """The motions in ``path``; raises ValueError saying what is wrong with the file."""
    try:
        text = read_text(path)
    except Unreadable as exc:
        raise ValueError(f"{exc}: {path}") from None
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if data is None:
            data = []
        if not isinstance(data, list) or not all(isinstance(m, str) for m in data):
            raise ValueError(f"{path} must hold a list of motions (text)")
        motions = [m.strip() for m in data if m.strip()]
    else:
        lines = (line.strip() for line in text.splitlines())
        motions = [line for line in lines if line and not line.startswith("#")]
    if not motions:
        raise ValueError(f"{path} holds no motions")
    if len(motions) > MAX_MOTIONS:
        raise ValueError(f"{path} holds more than {MAX_MOTIONS} motions")
    long = next((m for m in motions if len(m) > MAX_MOTION), None)
    if long is not None:
        raise ValueError(f"{path}: a motion longer than {MAX_MOTION} characters: {long[:40]!r}...")
    return motions


# ---------------------------------------------------------------------------- jury

Stage = Literal["before", "after"]
JURY_OPTIONS = GenerateConfig(temperature=0.0, num_predict=160)
DEFAULT_JURY_RUBRIC = (
    "Judge the arguments, not the speakers' confidence or length: which side made the "
    "clearer, better-supported case?"
)
MAX_JUDGES = 16


def _judge_shorthand(value: object) -> object:
    """``- smollm2:135m`` means a judge with that model."""
    return {"model": value} if isinstance(value, str) else value


class JurorSpec(_Strict):
    """One member of the jury."""

    model: Annotated[str, Field(min_length=1)] = Field(description="the judge's model")
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)] | None = Field(
        None, description="its label in transcripts (default juror-1, juror-2, ...)"
    )
    options: GenerateConfig = Field(
        GenerateConfig(), description="merged over the jury's options, for this judge only"
    )


class JurySpec(_Strict):
    """Judge models voting on the motion: after the debate and, optionally, before it."""

    judges: Annotated[
        list[
            Annotated[
                JurorSpec,
                BeforeValidator(_judge_shorthand, json_schema_input_type=str | JurorSpec),
            ]
        ],
        Field(min_length=1, max_length=MAX_JUDGES),
    ] = Field(description="models (or {model, name}); one vote each per stage")
    vote: Annotated[list[Stage], Field(min_length=1, max_length=2)] = Field(
        ["after"], description="when the jury votes: after, and before (the Oxford format)"
    )
    decide: Literal["moved", "after"] | None = Field(
        None,
        description="moved: the side that gained more votes wins (needs a before vote); "
        "after: the majority after the debate; default moved when voting before, else after",
    )
    rubric: str = Field(DEFAULT_JURY_RUBRIC, description="what the judges weigh after the debate")
    options: GenerateConfig = Field(
        GenerateConfig(),
        description="the judges' generation options, merged over temperature 0 and num_predict 160",
    )


class Juror(_Strict):
    name: str
    model: str
    options: GenerateConfig = GenerateConfig()  # its own, merged over the jury's


class Jury(_Strict):
    """A resolved jury."""

    jurors: tuple[Juror, ...]
    stages: tuple[Stage, ...]
    decide: Literal["moved", "after"]
    rubric: str
    options: GenerateConfig

    def agents(self) -> list[Agent]:
        """Each juror as a seat the run binds a model to."""
        return [
            Agent(name=j.name, model=j.model, options=self.options.merged(j.options))
            for j in self.jurors
        ]

    def options_of(self, juror: Juror) -> GenerateConfig:
        return self.options.merged(juror.options)
