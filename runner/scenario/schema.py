"""Scenario files: the YAML schema, loading with positions, and resolution.

Loading is ``yaml.safe_load``-equivalent (the SafeLoader composes the node tree, which
also gives every key and value its line and column) followed by pydantic validation.
Every problem becomes one line ``FILE:LINE:COL: FIELD: what was expected`` and all of
them are raised together as a :class:`ConfigError` before any model is called.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from agents.agent import Agent
from agents.backends import Requested
from agents.backends.config import GenerateConfig
from agents.errors import ConfigError
from runner.scenario.limits import MAX_AGENTS, MAX_NAME, MAX_REPEAT, MAX_TURNS
from runner.scenario.source import Loc, PositionMap, Schema, format_loc, read_yaml, validate

ORDERS = ("round_robin", "random", "simultaneous")
OUTCOMES = ("speaker_loses", "speaker_wins", "draw")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _label(value: str) -> str:
    """Names are one-line labels: printed, used in prompts and in file names."""
    if not value.strip():
        raise ValueError("a name needs a visible character")
    if value != value.strip() or any(not ch.isprintable() for ch in value):
        raise ValueError(
            "a name is a one-line label without surrounding spaces or control characters"
        )
    return value


Label = Annotated[str, Field(min_length=1, max_length=MAX_NAME), AfterValidator(_label)]
TurnCount = Annotated[int, Field(ge=1, le=MAX_TURNS)]

# Sampling, load and output options: the backend interface's own typed config.
Options = GenerateConfig


class AgentSpec(_Strict):
    """One speaker."""

    name: Label = Field(description="the speaker label; unique in the scenario")
    model: str | None = Field(None, description="model name (or .gguf path); else defaults.model")
    persona: str | None = Field(None, description="the system prompt; {placeholders} allowed")
    opening: str | None = Field(
        None, description="its first utterance, said verbatim (never checked by end rules)"
    )
    max_turns: TurnCount | None = Field(None, description="this agent's own turn limit")
    options: GenerateConfig = Field(
        GenerateConfig(), description="generation options, merged over defaults.options"
    )
    host: str | None = Field(None, description="a server for this agent only (--host overrides)")


class Defaults(_Strict):
    """Applied to every agent unless the agent sets the same field itself."""

    model: str | None = None
    persona: str | None = None
    max_turns: TurnCount | None = None
    options: GenerateConfig = GenerateConfig()
    host: str | None = None


class Stalemate(_Strict):
    """How much repetition ends a conversation as a stalemate."""

    repeats: int = Field(
        3, description="the same turn (or cycle of turns) this many times in a row, 2 to 50"
    )
    similarity: float = Field(
        0.9,
        description="how alike turns must be: the share of words in common, in order, "
        "0.5 to 1.0 (1.0: the same words)",
    )

    @field_validator("repeats")
    @classmethod
    def _repeats_range(cls, value: int) -> int:
        if not 2 <= value <= 50:
            raise ValueError(f"repeats counts turns said in a row: 2 to 50; got {value}")
        return value

    @field_validator("similarity")
    @classmethod
    def _similarity_range(cls, value: float) -> float:
        if not 0.5 <= value <= 1.0:
            raise ValueError(
                "similarity is the share of words two turns have in common: 0.5 to 1.0 "
                f"(1.0: the same words); got {value}"
            )
        return value


# Fields that read a turn's text, meaningless for a stalemate rule.
TEXT_FIELDS = ("ignore_quoted", "unless", "statements_only", "objects", "ignore_impersonated")


class EndRule(_Strict):
    """Ends the conversation when a generated turn says ``phrase``, matches ``regex``, or
    completes a ``stalemate``."""

    name: str | None = Field(None, description="a label for transcripts and summaries")
    phrase: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="whole words, any case, any whitespace between them"
    )
    regex: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="a Python regular expression, case-insensitive"
    )
    stalemate: Stalemate | None = Field(
        None, description="a speaker repeating itself, or the conversation cycling"
    )
    outcome: Literal["speaker_loses", "speaker_wins", "draw"]
    speakers: list[str] | None = Field(
        None, description="only these agents' turns are checked (default: everyone's)"
    )
    ignore_quoted: bool = Field(
        True, description="text in quotation marks is a quotation, not a statement: skip it"
    )
    unless: Annotated[list[str], Field(max_length=32)] = Field(
        [], description="a sentence that also matches one of these regexes does not count"
    )
    statements_only: bool | None = Field(
        None,
        description="only a statement counts, not a question, a negated, conditional or "
        "reported mention, or the phrase with an object of its own (default: true for "
        "phrase, false for regex)",
    )
    objects: Annotated[list[str], Field(max_length=64)] | Literal["any"] | None = Field(
        None,
        description="with statements_only: what may follow the phrase as its object and "
        "still count (default: this one, the game, the argument, ...); any: no object check",
    )
    ignore_impersonated: bool = Field(
        True,
        description="lines a speaker writes under another agent's name ('qwen: I lost.' "
        "in llama's turn) are not its words: skip them",
    )

    @model_validator(mode="after")
    def _one_matcher(self) -> EndRule:
        given = [k for k in ("phrase", "regex", "stalemate") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'phrase' or 'regex' (or 'stalemate' for a stalemate rule)"
            )
        if self.stalemate is not None:
            for key in TEXT_FIELDS:
                # Set to its default is no contradiction (a rule read back from a transcript).
                default = type(self).model_fields[key].default
                if key in self.model_fields_set and getattr(self, key) != default:
                    raise ValueError(
                        f"{key!r} applies to phrase and regex rules; "
                        "a stalemate rule compares whole turns"
                    )
        elif self.objects is not None and not self.reads_statements:
            raise ValueError(
                "'objects' needs statements_only: true (a regex rule's default is false)"
            )
        return self

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            _compile(value)
        return value

    @field_validator("unless")
    @classmethod
    def _unless_compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            _compile(pattern)
        return value

    @field_validator("objects", mode="before")
    @classmethod
    def _objects_are_words(cls, value: Any) -> Any:
        # One clear message instead of one per member of the union.
        if isinstance(value, str) and value != "any":
            raise ValueError(f"expected a list of words or 'any'; got {value!r}")
        for item in value if isinstance(value, list) else []:
            if isinstance(item, str) and not item.split():
                raise ValueError("an object needs a visible word; got an empty one")
        return value

    @property
    def reads_statements(self) -> bool:
        """Whether questions, hedged mentions and other objects are told from statements."""
        if self.statements_only is not None:
            return self.statements_only
        return self.phrase is not None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.phrase is not None:
            return f"phrase {self.phrase!r}"
        return f"regex {self.regex!r}" if self.regex is not None else "stalemate"


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"malformed regex {pattern!r}: {exc}") from None


class Scenario(_Strict):
    """A sparring scenario: who talks, in what order, and what ends the conversation."""

    name: Label = Field(description="used in transcripts and their file names")
    description: str = Field("", description="free text; {placeholders} allowed")
    vars: dict[str, str | int | float | bool] = Field(
        {}, description="values for {name} placeholders (--var overrides)"
    )
    backend: Requested | None = Field(
        None, description="the engine (--backend overrides); default auto"
    )
    hosts: list[str] = Field([], description="server URLs for this scenario (--host overrides)")
    api_key_env: str | None = Field(
        None, description="name of the environment variable holding an API key (openai)"
    )
    agents: Annotated[list[AgentSpec], Field(min_length=2, max_length=MAX_AGENTS)]
    defaults: Defaults = Field(
        Defaults(), description="applied to every agent unless it sets the field"
    )
    order: Literal["round_robin", "random", "simultaneous"] = Field(
        "round_robin", description="who speaks when"
    )
    max_turns: TurnCount = Field(20, description="the conversation's turn limit, openings included")
    end: Annotated[list[EndRule], Field(max_length=32)] = Field(
        [], description="rules checked after every generated turn, in order"
    )
    history: Literal["all"] | TurnCount = Field(
        "all", description="all, or N: each agent is sent only the last N turns"
    )
    repeat: Annotated[int, Field(ge=1, le=MAX_REPEAT)] = Field(
        1, description="how many conversations to run (--repeat overrides)"
    )
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = Field(
        None, description="base seed (--seed overrides); random if absent, always recorded"
    )
    kickoff: str = Field(
        "Please begin.", description="what an agent speaking first, with nothing to answer, is sent"
    )


def json_schema() -> dict[str, Any]:
    """JSON Schema of a scenario file, for editors (completion, inline errors)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def cross_check(scenario: Scenario) -> list[tuple[Loc, str]]:
    """Checks that span fields, each with the location to report it at."""
    problems: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for i, agent in enumerate(scenario.agents):
        if agent.name in seen:
            problems.append((("agents", i, "name"), f"duplicate agent name {agent.name!r}"))
        seen.add(agent.name)
        if agent.model is None and scenario.defaults.model is None:
            problems.append((("agents", i), "no model: set agents[].model or defaults.model"))
    for j, rule in enumerate(scenario.end):
        for speaker in rule.speakers or []:
            if speaker not in seen:
                problems.append((("end", j, "speakers"), f"unknown agent {speaker!r}"))
    return problems


# ---------------------------------------------------------------------------- resolution


@dataclass(frozen=True, slots=True)
class ResolvedScenario:
    """A scenario with defaults merged and variables substituted: what a run executes."""

    name: str
    description: str
    source: str
    agents: tuple[Agent, ...]
    order: str
    max_turns: int
    end: tuple[EndRule, ...]
    history: str | int
    repeat: int
    seed: int | None
    kickoff: str
    vars: dict[str, Any]
    backend: str | None
    hosts: tuple[str, ...]
    api_key_env: str | None
    hash: str = field(default="")
    # What the command line changed (vars, models, max_turns, repeat, seed), as recorded.
    overrides: dict[str, Any] = field(default_factory=dict)
    # Where ``backend`` came from, for the run line's reason (not hashed).
    backend_set_by: str = "backend in the file"

    @property
    def models(self) -> list[str]:
        return sorted({agent.model for agent in self.agents})

    def content(self) -> dict[str, Any]:
        """What the scenario makes happen, JSON-ready: hashed into ``hash``.

        Leaves out where the file lives and how often and with which seed it is run, so
        every run of the same scenario shares one hash.
        """
        return {
            "name": self.name,
            "description": self.description,
            "agents": [
                {
                    "name": a.name,
                    "model": a.model,
                    "persona": a.persona,
                    "opening": a.opening,
                    "max_turns": a.max_turns,
                    "options": a.options.set_fields(),
                    "host": a.host,
                }
                for a in self.agents
            ],
            "order": self.order,
            "max_turns": self.max_turns,
            "end": [rule.model_dump(exclude_none=True) for rule in self.end],
            "history": self.history,
            "kickoff": self.kickoff,
            "vars": self.vars,
            "backend": self.backend,
            "hosts": list(self.hosts),
            "api_key_env": self.api_key_env,
        }


PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(text: str, variables: dict[str, Any]) -> tuple[str, list[str]]:
    """Replace ``{name}`` with its value (``{{``/``}}`` are literal braces).

    Returns the new text and the names that were not defined. Plain text replacement:
    values are never evaluated.
    """
    missing: list[str] = []

    text = text.strip()

    def repl(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        key = match.group(1)
        if key not in variables:
            missing.append(key)
            return token
        return str(variables[key])

    return PLACEHOLDER.sub(repl, text), missing


class _Substitution:
    """Fills ``{name}`` placeholders, collecting an error line for each undefined one."""

    def __init__(self, variables: dict[str, Any], positions: PositionMap) -> None:
        self.variables = variables
        self.positions = positions
        self.problems: list[str] = []

    def __call__(self, text: str | None, loc: Loc) -> str | None:
        if text is None:
            return None
        result, missing = substitute(text, self.variables)
        defined = ", ".join(sorted(self.variables)) or "none"
        for key in missing:
            message = f"undefined placeholder {{{key}}} (vars defined: {defined})"
            self.problems.append(self.positions.describe(loc, message))
        return result


def _agent(scenario: Scenario, i: int, sub: _Substitution, model: str | None) -> Agent:
    spec, defaults = scenario.agents[i], scenario.defaults
    own_persona = spec.persona is not None
    persona_loc: Loc = ("agents", i, "persona") if own_persona else ("defaults", "persona")
    return Agent(
        name=spec.name,
        model=model or spec.model or defaults.model or "",
        persona=sub(spec.persona if own_persona else defaults.persona, persona_loc) or "",
        opening=sub(spec.opening, ("agents", i, "opening")),
        max_turns=spec.max_turns or defaults.max_turns,
        options=defaults.options.merged(spec.options),
        host=spec.host or defaults.host,
    )


def placeholders(scenario: Scenario) -> set[str]:
    """Every ``{name}`` the scenario's texts use."""
    texts = [scenario.description, scenario.kickoff, scenario.defaults.persona or ""]
    texts += [t for a in scenario.agents for t in (a.persona, a.opening) if t]
    return {m.group(1) for text in texts for m in PLACEHOLDER.finditer(text) if m.group(1)}


def suggestion(name: str, choices: list[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest choice, ignoring case; else nothing."""
    lowered = {c.lower(): c for c in choices}
    hint = difflib.get_close_matches(name.lower(), list(lowered), n=1)
    return f" (did you mean {lowered[hint[0]]!r}?)" if hint else ""


def _check_overrides(scenario: Scenario, source: str, overrides: dict[str, Any]) -> None:
    """Command-line variables and models must name something the scenario has."""
    problems = []
    known = set(scenario.vars) | placeholders(scenario)
    for key in overrides.get("vars") or {}:
        if key not in known:
            listed = ", ".join(sorted(known)) or "none"
            problems.append(
                f"{source}: --var {key}: the scenario has no variable {key!r}"
                f"{suggestion(key, sorted(known))}; its variables: {listed}"
            )
    names = [a.name for a in scenario.agents]
    for agent in overrides.get("models") or {}:
        if agent is not None and agent not in names:
            problems.append(
                f"{source}: --model {agent}=...: no agent {agent!r}{suggestion(agent, names)}; "
                f"agents: {', '.join(names)}"
            )
    if problems:
        raise ConfigError(problems)


def resolve(
    scenario: Scenario, source: str, positions: PositionMap | None = None, **overrides: Any
) -> ResolvedScenario:
    """Merge defaults, substitute variables and fix the run parameters.

    ``overrides`` come from the command line: ``vars`` (name -> value), ``models`` (agent
    name -> model; the key None means every agent), ``max_turns``, ``repeat``, ``seed``.
    """
    _check_overrides(scenario, source, overrides)
    variables: dict[str, Any] = {**scenario.vars, **(overrides.get("vars") or {})}
    sub = _Substitution(variables, positions or PositionMap(source))
    models: dict[str | None, str] = overrides.get("models") or {}
    agents = [
        _agent(scenario, i, sub, models.get(spec.name) or models.get(None))
        for i, spec in enumerate(scenario.agents)
    ]
    description = sub(scenario.description, ("description",)) or ""
    kickoff = sub(scenario.kickoff, ("kickoff",)) or ""
    if sub.problems:
        raise ConfigError(sub.problems)
    recorded = {
        key: value
        for key, value in {
            "vars": overrides.get("vars") or None,
            "models": {k or "*": v for k, v in models.items()} or None,
            "max_turns": overrides.get("max_turns"),
            "repeat": overrides.get("repeat"),
            "seed": overrides.get("seed"),
        }.items()
        if value is not None
    }
    resolved = ResolvedScenario(
        name=scenario.name,
        description=description,
        source=source,
        agents=tuple(agents),
        order=scenario.order,
        max_turns=overrides.get("max_turns") or scenario.max_turns,
        end=tuple(scenario.end),
        history=scenario.history,
        repeat=overrides.get("repeat") or scenario.repeat,
        seed=overrides["seed"] if overrides.get("seed") is not None else scenario.seed,
        kickoff=kickoff,
        vars=variables,
        backend=scenario.backend,
        hosts=tuple(scenario.hosts),
        api_key_env=scenario.api_key_env,
        overrides=recorded,
    )
    content = json.dumps(resolved.content(), sort_keys=True, default=str)
    digest = hashlib.sha256(content.encode()).hexdigest()
    return replace(resolved, hash=f"sha256:{digest}")


# ---------------------------------------------------------------------------- loading


def _options_hint(loc: Loc, key: str) -> str:
    option = difflib.get_close_matches(key, list(GenerateConfig.model_fields), n=1)
    if option and len(loc) >= 2 and loc[-2] != "options":
        return f"; sampling options go under {format_loc(loc[:-1])}.options.{option[0]}"
    return ""


SCHEMA = Schema(
    root=Scenario,
    nested={
        "agents": AgentSpec,
        "defaults": Defaults,
        "options": GenerateConfig,
        "end": EndRule,
        "stalemate": Stalemate,
    },
    unknown_key_hint=_options_hint,
    too_short={("agents",): "a scenario needs at least two agents"},
    mappings={
        "options": "a mapping of options",
        "defaults": "a mapping of defaults (model, persona, options, ...)",
        "stalemate": "a mapping of stalemate settings (repeats, similarity)",
        "vars": "a mapping of names to values",
    },
)


def load_scenario(path: str | Path, **overrides: Any) -> ResolvedScenario:
    """Read, validate and resolve one scenario file, or raise ConfigError listing every problem."""
    data, positions = read_yaml(path, "a scenario with 'name' and 'agents'")
    return scenario_from_data(data, str(path), positions, **overrides)


def scenario_from_data(
    data: dict[str, Any],
    source: str = "<scenario>",
    positions: PositionMap | None = None,
    **overrides: Any,
) -> ResolvedScenario:
    """Validate already-parsed scenario data and resolve it (raises ConfigError)."""
    positions = positions or PositionMap(source)
    scenario = validate(data, positions, SCHEMA, cross_check)
    return resolve(scenario, source, positions, **overrides)
