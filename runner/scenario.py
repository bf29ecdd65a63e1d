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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from agents.agent import Agent
from agents.errors import ConfigError

Loc = tuple[str | int, ...]

ORDERS = ("round_robin", "random", "simultaneous")
OUTCOMES = ("speaker_loses", "speaker_wins", "draw")


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class Options(_Strict):
    """Sampling and load options, in ollama's vocabulary; every backend maps what it can."""

    temperature: Annotated[float, Field(ge=0)] | None = None
    seed: int | None = None
    num_predict: int | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    stop: Annotated[list[str], BeforeValidator(_listify)] | None = None
    repeat_penalty: Annotated[float, Field(ge=0)] | None = None
    num_ctx: PositiveInt | None = None

    def merged(self, over: Options) -> Options:
        """These options, with every option ``over`` sets taking precedence."""
        return self.model_copy(update=over.model_dump(exclude_none=True))


class AgentSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    model: str | None = None
    persona: str | None = None
    opening: str | None = None
    max_turns: PositiveInt | None = None
    options: Options = Options()
    host: str | None = None

    @field_validator("name")
    @classmethod
    def _name_is_a_label(cls, value: str) -> str:
        if value != value.strip() or "\n" in value:
            raise ValueError("a name is a one-line label without surrounding spaces")
        return value


class Defaults(_Strict):
    """Applied to every agent unless the agent sets the same field itself."""

    model: str | None = None
    persona: str | None = None
    max_turns: PositiveInt | None = None
    options: Options = Options()
    host: str | None = None


class EndRule(_Strict):
    """Ends the conversation when a generated turn says ``phrase`` or matches ``regex``."""

    name: str | None = None
    phrase: Annotated[str, Field(min_length=1)] | None = None
    regex: Annotated[str, Field(min_length=1)] | None = None
    outcome: Literal["speaker_loses", "speaker_wins", "draw"]
    # Only these agents' turns are checked (default: everyone's).
    speakers: list[str] | None = None
    # Text in quotation marks is a quotation, not a concession: skip it.
    ignore_quoted: bool = True
    # A sentence that also matches one of these is not counted (e.g. the rule quoted back:
    # "if you say I lost, you lose").
    unless: list[str] = []

    @model_validator(mode="after")
    def _one_matcher(self) -> EndRule:
        if (self.phrase is None) == (self.regex is None):
            raise ValueError("give exactly one of 'phrase' or 'regex'")
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

    @property
    def label(self) -> str:
        return self.name or (f"phrase {self.phrase!r}" if self.phrase else f"regex {self.regex!r}")


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"malformed regex {pattern!r}: {exc}") from None


class Scenario(_Strict):
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    vars: dict[str, str | int | float] = {}
    backend: Literal["auto", "ollama", "local", "openai"] | None = None
    hosts: list[str] = []
    api_key_env: str | None = None
    agents: Annotated[list[AgentSpec], Field(min_length=2)]
    defaults: Defaults = Defaults()
    order: Literal["round_robin", "random", "simultaneous"] = "round_robin"
    max_turns: PositiveInt = 20
    end: list[EndRule] = []
    history: Literal["all"] | PositiveInt = "all"
    repeat: PositiveInt = 1
    seed: int | None = None
    # What an agent that must speak first, with nothing to answer yet, is sent as the user.
    kickoff: str = "Please begin."


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

    @property
    def models(self) -> list[str]:
        return sorted({agent.model for agent in self.agents})

    def to_record(self) -> dict[str, Any]:
        """JSON-ready description, as hashed and as written to the transcript."""
        data = asdict(self)
        data["end"] = [rule.model_dump(exclude_none=True) for rule in self.end]
        data.pop("hash")
        return data


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


def resolve(
    scenario: Scenario, source: str, positions: PositionMap | None = None, **overrides: Any
) -> ResolvedScenario:
    """Merge defaults, substitute variables and fix the run parameters."""
    variables: dict[str, Any] = {**scenario.vars, **(overrides.get("vars") or {})}
    problems: list[str] = []
    positions = positions or PositionMap(source)

    def sub(text: str | None, loc: Loc) -> str | None:
        if text is None:
            return None
        result, missing = substitute(text, variables)
        for key in missing:
            defined = ", ".join(sorted(variables)) or "none"
            problems.append(
                positions.describe(
                    loc, f"undefined placeholder {{{key}}} (vars defined: {defined})"
                )
            )
        return result

    agents = []
    for i, spec in enumerate(scenario.agents):
        persona_loc: Loc = (
            ("agents", i, "persona")
            if spec.persona is not None
            else (
                "defaults",
                "persona",
            )
        )
        options = scenario.defaults.options.merged(spec.options).model_dump(exclude_none=True)
        agents.append(
            Agent(
                name=spec.name,
                model=spec.model or scenario.defaults.model or "",
                persona=sub(
                    spec.persona if spec.persona is not None else scenario.defaults.persona,
                    persona_loc,
                )
                or "",
                opening=sub(spec.opening, ("agents", i, "opening")),
                max_turns=spec.max_turns or scenario.defaults.max_turns,
                options=options,
                host=spec.host or scenario.defaults.host,
            )
        )
    description = sub(scenario.description, ("description",)) or ""
    kickoff = sub(scenario.kickoff, ("kickoff",)) or ""
    if problems:
        raise ConfigError(problems)
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
    )
    # What the scenario does, not where its file lives: copies of one scenario hash alike.
    content = {k: v for k, v in resolved.to_record().items() if k != "source"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return replace(resolved, hash=f"sha256:{digest}")


# ---------------------------------------------------------------------------- loading


class PositionMap:
    """Field path -> (line, column), 1-based, from the composed YAML node tree."""

    def __init__(self, source: str, root: yaml.Node | None = None) -> None:
        self.source = source
        self.values: dict[Loc, tuple[int, int]] = {}
        self.keys: dict[Loc, tuple[int, int]] = {}
        self.duplicates: list[tuple[Loc, tuple[int, int]]] = []
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        self.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = (*loc, key)
                pos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in seen:
                    self.duplicates.append((child, pos))
                seen.add(key)
                self.keys[child] = pos
                self._walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*loc, i))

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int] | None:
        # The deepest known ancestor: a missing field is reported where its parent is.
        for depth in range(len(loc), -1, -1):
            prefix = loc[:depth]
            table = self.keys if key and depth == len(loc) else self.values
            if prefix in table:
                return table[prefix]
            if prefix in self.keys:
                return self.keys[prefix]
        return None

    def describe(self, loc: Loc, message: str, *, key: bool = False) -> str:
        pos = self.position(loc, key=key)
        where = f"{self.source}:{pos[0]}:{pos[1]}" if pos else self.source
        return f"{where}: {format_loc(loc) or '(top level)'}: {message}"


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_NESTED: dict[str, type[BaseModel]] = {
    "agents": AgentSpec,
    "defaults": Defaults,
    "options": Options,
    "end": EndRule,
}


def _known_fields(loc: Loc) -> list[str]:
    """Field names allowed in the mapping that holds ``loc``'s last key."""
    model: type[BaseModel] = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        nested = _NESTED.get(str(part))
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _explain(error: Any, positions: PositionMap) -> str:
    loc: Loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _known_fields(loc)
        hint = difflib.get_close_matches(key, known, n=1)
        message = f"unknown key {key!r}"
        if hint:
            message += f" (did you mean {hint[0]!r}?)"
        elif known:
            message += f"; expected one of: {', '.join(known)}"
        option = difflib.get_close_matches(key, list(Options.model_fields), n=1)
        if option and not hint and len(loc) >= 2 and loc[-2] != "options":
            parent = format_loc(loc[:-1])
            message += f"; sampling options go under {parent}.options.{option[0]}"
        return positions.describe(loc, message, key=True)
    if kind == "missing":
        return positions.describe(loc, "required field is missing")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return positions.describe(loc, f"expected one of {expected}; got {value!r}")
    if kind == "too_short" and loc == ("agents",):
        count = len(value) if isinstance(value, list) else 0
        return positions.describe(loc, f"a scenario needs at least two agents; got {count}")
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind in {
        "model_type",
        "dict_type",
        "list_type",
        "string_type",
        "int_type",
        "float_type",
        "int_parsing",
        "float_parsing",
        "bool_type",
        "bool_parsing",
        "int_from_float",
    }:
        message = f"{message}; got {value!r}"
    return positions.describe(loc, message)


def load_scenario(path: str | Path, **overrides: Any) -> ResolvedScenario:
    """Read, validate and resolve one scenario file, or raise ConfigError listing every problem."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from None
    try:
        # One pass: the node tree (for positions) and the data built from it, exactly as
        # yaml.safe_load builds it.
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if root is None or data is None:
        raise ConfigError(
            f"{source}: the file is empty; expected a scenario with 'name' and 'agents'"
        )
    positions = PositionMap(source, root)
    if not isinstance(data, dict):
        raise ConfigError(
            positions.describe(
                (), f"expected a mapping with 'name' and 'agents'; got a {type(data).__name__}"
            )
        )
    return scenario_from_data(data, source, positions, **overrides)


def scenario_from_data(
    data: dict[str, Any],
    source: str = "<scenario>",
    positions: PositionMap | None = None,
    **overrides: Any,
) -> ResolvedScenario:
    """Validate already-parsed scenario data and resolve it (raises ConfigError)."""
    positions = positions or PositionMap(source)
    problems = [
        positions.describe(loc, f"duplicate key {loc[-1]!r}", key=True)
        for loc, _ in positions.duplicates
    ]
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems.extend(_explain(error, positions) for error in exc.errors())
        raise ConfigError(sorted(problems, key=_line_of)) from None
    problems.extend(positions.describe(loc, message) for loc, message in cross_check(scenario))
    if problems:
        raise ConfigError(sorted(problems, key=_line_of))
    return resolve(scenario, source, positions, **overrides)


def _line_of(problem: str) -> tuple[int, int]:
    match = re.match(r".*?:(\d+):(\d+): ", problem)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)
