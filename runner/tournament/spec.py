"""Tournament files: the YAML schema, validated like scenarios (file, line, field)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from agents.backends import Requested
from agents.backends.config import GenerateConfig
from agents.errors import ConfigError
from runner.scenario.schema import (
    PLACEHOLDER,
    Label,
    ResolvedScenario,
    load_scenario,
    suggestion,
)
from runner.scenario.source import Loc, Schema, read_yaml, validate

MAX_ENTRANTS = 64
MAX_GAMES = 10_000  # per pairing and seat order
DEFAULT_RUBRIC = (
    "Decide who argued better: who made clearer, more relevant points, stayed on topic and "
    "kept to the rules of the conversation. Length is not quality."
)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _shorthand(value: Any) -> Any:
    """``- qwen:0.5b`` means an entrant named after its model."""
    return {"name": value, "model": value} if isinstance(value, str) else value


class EntrantSpec(_Strict):
    """A contestant: a model, optionally with its own persona and options."""

    name: Label = Field(description="unique; the speaker's name in the games' transcripts")
    model: Annotated[str, Field(min_length=1)]
    persona: str | None = Field(
        None,
        description="replaces the seat's persona; {seat_persona} inserts the seat's own",
    )
    options: GenerateConfig = Field(GenerateConfig(), description="merged over the seat's options")


class JudgeSpec(_Strict):
    """A model that decides games the end rules leave undecided (or all of them)."""

    model: Annotated[str, Field(min_length=1)]
    rubric: str = Field(DEFAULT_RUBRIC, description="what makes a speaker the better one")
    when: Literal["undecided", "always"] = Field(
        "undecided", description="judge only undecided games, or every game"
    )
    options: GenerateConfig = Field(
        GenerateConfig(temperature=0.0, num_predict=200),
        description="the judge's generation options",
    )


class TournamentSpec(_Strict):
    """A tournament: entrants playing a two-seat scenario against each other."""

    name: Label
    description: str = ""
    scenario: Annotated[str, Field(min_length=1)] = Field(
        description="path of a two-seat scenario, relative to this file; its agents are the seats"
    )
    vars: dict[str, str | int | float | bool] = Field({}, description="the scenario's variables")
    entrants: Annotated[
        list[
            Annotated[
                EntrantSpec, BeforeValidator(_shorthand, json_schema_input_type=str | EntrantSpec)
            ]
        ],
        Field(min_length=2, max_length=MAX_ENTRANTS),
    ]
    format: Literal["round_robin", "gauntlet"] = Field(
        "round_robin",
        description="round_robin: every pair; gauntlet: each challenger against every entrant",
    )
    challengers: list[str] = Field([], description="entrant names (gauntlet)")
    games: Annotated[int, Field(ge=1, le=MAX_GAMES)] = Field(
        1, description="games per pairing and seat order"
    )
    swap_seats: bool = Field(True, description="play every pairing from both seats")
    judge: JudgeSpec | None = None
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = Field(
        1, description="base seed; each game's seed derives from it and the game id"
    )
    backend: Requested | None = None
    hosts: list[str] = Field([], description="servers (--host overrides); blocks go by affinity")
    max_loaded: Annotated[int, Field(ge=1, le=64)] | Literal["learn"] | None = Field(
        None,
        description="models a server keeps loaded at once; learn (the default): learned from "
        "what the server says it holds",
    )


def cross_check(spec: TournamentSpec) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    names: list[str] = []
    for i, entrant in enumerate(spec.entrants):
        if entrant.name in names:
            problems.append((("entrants", i, "name"), f"duplicate entrant name {entrant.name!r}"))
        names.append(entrant.name)
        unknown = {m.group(1) for m in PLACEHOLDER.finditer(entrant.persona or "") if m.group(1)}
        for key in sorted(unknown - {"seat_persona"}):
            problems.append(
                (("entrants", i, "persona"), f"undefined placeholder {{{key}}}; only "
                 "{seat_persona} (the seat's own persona) is known here")
            )  # fmt: skip
    if spec.format == "gauntlet" and not spec.challengers:
        problems.append((("challengers",), "a gauntlet needs challengers: entrant names"))
    if spec.format == "round_robin" and spec.challengers:
        problems.append((("challengers",), "challengers are for format: gauntlet"))
    for j, name in enumerate(spec.challengers):
        if name not in names:
            problems.append((("challengers", j), f"no entrant {name!r}{suggestion(name, names)}"))
    return problems


SCHEMA = Schema(
    root=TournamentSpec,
    nested={
        "entrants": EntrantSpec,
        "judge": JudgeSpec,
        "options": GenerateConfig,
    },
    too_short={("entrants",): "a tournament needs at least two entrants"},
    mappings={
        "options": "a mapping of options",
        "judge": "a mapping of judge settings (model, rubric, when, options)",
        "vars": "a mapping of names to values",
    },
)


@dataclass(frozen=True, slots=True)
class Entrant:
    name: str
    model: str
    persona: str | None
    options: GenerateConfig

    def definition(self) -> dict[str, Any]:
        """What makes this entrant itself: part of every game id it plays."""
        return {
            "name": self.name,
            "model": self.model,
            "persona": self.persona,
            "options": self.options.set_fields(),
        }


@dataclass(frozen=True, slots=True)
class Judge:
    model: str
    rubric: str
    when: str
    options: GenerateConfig

    def definition(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rubric": self.rubric,
            "when": self.when,
            "options": self.options.set_fields(),
        }


@dataclass(frozen=True, slots=True)
class Tournament:
    """A validated tournament with its scenario loaded: what ``play`` runs."""

    name: str
    description: str
    source: str
    scenario: ResolvedScenario
    entrants: tuple[Entrant, ...]
    format: str
    challengers: tuple[str, ...]
    games: int
    swap_seats: bool
    judge: Judge | None
    seed: int
    backend: Requested | None
    hosts: tuple[str, ...]
    max_loaded: int | Literal["learn"] | None

    @property
    def seats(self) -> tuple[str, str]:
        first, second = self.scenario.agents
        return first.name, second.name

    def scenario_models(self) -> list[str]:
        """Models the scenario itself brings, whoever is seated: a moderator's."""
        seats = {a.name for a in self.scenario.agents}
        return sorted({a.model for a in self.scenario.voices if a.name not in seats})

    def entrant(self, name: str) -> Entrant:
        return next(e for e in self.entrants if e.name == name)

    def definition(self) -> dict[str, Any]:
        """Everything that decides which games are played and how: hashed into ``hash``."""
        return {
            "scenario": self.scenario.hash,
            "entrants": [e.definition() for e in self.entrants],
            "format": self.format,
            "challengers": list(self.challengers),
            "games": self.games,
            "swap_seats": self.swap_seats,
            "judge": self.judge.definition() if self.judge else None,
            "seed": self.seed,
        }

    @property
    def hash(self) -> str:
        text = json.dumps(self.definition(), sort_keys=True)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def load_tournament(path: str | Path) -> Tournament:
    """Read and validate a tournament file and its scenario, or raise ConfigError listing
    every problem, each naming its file, line and field."""
    path = Path(path)
    data, positions = read_yaml(path, "a tournament with 'name', 'scenario' and 'entrants'")
    spec: TournamentSpec = validate(data, positions, SCHEMA, cross_check)
    scenario_path = (path.parent / spec.scenario).resolve()
    if not scenario_path.is_file():  # said where the tournament names it
        raise ConfigError(positions.describe(("scenario",), f"no such file: {scenario_path}"))
    scenario = load_scenario(scenario_path, vars=dict(spec.vars) or None)
    if len(scenario.agents) != 2:
        raise ConfigError(
            positions.describe(
                ("scenario",),
                f"a tournament needs a two-seat scenario (two agents); {spec.scenario} has "
                f"{len(scenario.agents)}",
            )
        )
    return Tournament(
        name=spec.name,
        description=spec.description,
        source=str(path),
        scenario=scenario,
        entrants=tuple(Entrant(e.name, e.model, e.persona, e.options) for e in spec.entrants),
        format=spec.format,
        challengers=tuple(spec.challengers),
        games=spec.games,
        swap_seats=spec.swap_seats,
        judge=Judge(spec.judge.model, spec.judge.rubric, spec.judge.when, spec.judge.options)
        if spec.judge
        else None,
        seed=spec.seed,
        backend=spec.backend,
        hosts=tuple(spec.hosts),
        max_loaded=spec.max_loaded,
    )


def json_schema() -> dict[str, Any]:
    schema = TournamentSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
