"""Scenario files: the YAML schema, loading with positions, and resolution.

Loading is ``yaml.safe_load``-equivalent (the SafeLoader composes the node tree, which
also gives every key and value its line and column) followed by pydantic validation.
Every problem becomes one line ``FILE:LINE:COL: FIELD: what was expected`` and all of
them are raised together as a :class:`ConfigError` before any model is called.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
)

from agents.agent import Agent
from agents.backends import Requested
from agents.backends.config import GenerateConfig
from agents.errors import ConfigError
from runner.scenario.debate import (
    ANNOUNCE_FIELDS,
    JURY_OPTIONS,
    MAX_MOTIONS,
    MODERATOR_OPTIONS,
    SIDES,
    Juror,
    JurorSpec,
    Jury,
    JurySpec,
    Moderator,
    ModeratorSpec,
    Motion,
    MotionsFile,
    Sides,
    read_motions,
)
from runner.scenario.ending import EndRule, Stalemate, _Strict
from runner.scenario.limits import MAX_AGENTS, MAX_NAME, MAX_REPEAT, MAX_TURNS
from runner.scenario.phases import Budget, Phase, Phases
from runner.scenario.snapshot import Order, Overrides, ResolvedScenario
from runner.scenario.source import Loc, PositionMap, Schema, format_loc, read_yaml, validate


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
    order: Order = Field("round_robin", description="who speaks when")
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
    phases: Phases = Field(
        [],
        description="stages played in order, each with its speakers, turns, instruction and "
        "budget; without phases the agents take turns by order until max_turns",
    )
    moderator: ModeratorSpec | None = Field(
        None, description="chairs a phased debate: announces each phase; never a debater"
    )
    motions: (
        Annotated[list[Motion], Field(min_length=1, max_length=MAX_MOTIONS)] | MotionsFile | None
    ) = Field(
        None,
        description="what is debated: each conversation (each tournament pairing's game) "
        "draws one, seeded, as {motion}; a list, or {file: PATH}",
    )
    sides: Sides | None = Field(
        None,
        description="which agent argues which side; phases may name sides as speakers, and "
        "{side} in personas and instructions is the speaker's",
    )
    jury: JurySpec | None = Field(
        None, description="judge models voting on the motion after (and before) the debate"
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
    problems += _check_phases(scenario, [a.name for a in scenario.agents])
    return problems


def _check_jury(scenario: Scenario, names: list[str]) -> list[tuple[Loc, str]]:
    jury = scenario.jury
    if jury is None:
        return []
    problems: list[tuple[Loc, str]] = []
    if scenario.sides is None:
        problems.append((("jury",), "a jury votes for a side: add sides (proposition, opposition)"))
    if scenario.motions is None and not scenario.description.strip():
        problems.append(
            (("jury",), "a jury votes on a motion: add motions (or a description stating it)")
        )
    if jury.decide == "moved" and "before" not in jury.vote:
        problems.append(
            (("jury", "decide"), "moved compares votes before and after: add before to vote")
        )
    if len(set(jury.vote)) < len(jury.vote):
        problems.append((("jury", "vote"), "each stage once: before, after"))
    taken = set(names) | {scenario.moderator.name if scenario.moderator else ""}
    for j, juror in enumerate(_jurors(jury)):
        if juror.name in taken:
            problems.append(
                (("jury", "judges", j), f"{juror.name!r} is taken (an agent, the moderator or "
                 "another judge): give the judge a name of its own")
            )  # fmt: skip
        taken.add(juror.name)
    return problems


def _jurors(jury: JurySpec) -> list[Juror]:
    return [
        Juror(name=spec.name or f"juror-{j + 1}", model=spec.model, options=spec.options)
        for j, spec in enumerate(jury.judges)
    ]


def _jury(spec: JurySpec | None) -> Jury | None:
    if spec is None:
        return None
    stages = tuple(stage for stage in ("before", "after") if stage in spec.vote)
    return Jury(
        jurors=tuple(_jurors(spec)),
        stages=stages,
        decide=spec.decide or ("moved" if "before" in stages else "after"),
        rubric=spec.rubric.strip(),
        options=JURY_OPTIONS.merged(spec.options),
    )


def _check_phases(scenario: Scenario, names: list[str]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    if scenario.phases and "order" in scenario.model_fields_set:
        problems.append(
            (("order",), "phases set who speaks when: remove order, or list speakers per phase")
        )
    moderator = scenario.moderator
    if moderator is not None and not scenario.phases:
        problems.append((("moderator",), "a moderator announces phases: add phases"))
    if moderator is not None and moderator.name in names:
        problems.append(
            (("moderator", "name"), f"{moderator.name!r} is an agent; the moderator needs a name "
             "of its own")
        )  # fmt: skip
    sides = scenario.sides
    if sides is not None:
        for side in SIDES:
            agent = getattr(sides, side)
            if agent not in names:
                problems.append(
                    (("sides", side), f"unknown agent {agent!r}{suggestion(agent, names)}; "
                     f"agents: {', '.join(names)}")
                )  # fmt: skip
        if sides.proposition == sides.opposition:
            problems.append((("sides", "opposition"), "one agent cannot argue both sides"))
    problems += _check_jury(scenario, names)
    speakable = [*names, *(SIDES if sides else ())]
    listed = ", ".join(names) + (" (or a side: proposition, opposition)" if sides else "")
    for p, phase in enumerate(scenario.phases):
        # Sides as their agents, to find one agent listed twice (sides both one agent: said).
        usable = sides if sides and sides.proposition != sides.opposition else None
        resolved = [getattr(usable, s) if usable and s in SIDES else s for s in phase.speakers]
        for k, speaker in enumerate(phase.speakers):
            if speaker not in speakable:
                problems.append(
                    (("phases", p, "speakers", k), f"unknown speaker {speaker!r}"
                     f"{suggestion(speaker, speakable)}; agents: {listed}")
                )  # fmt: skip
            elif resolved[k] in resolved[:k]:
                problems.append((("phases", p, "speakers", k), f"{speaker!r} is listed twice"))
        for speaker in phase.script or {}:
            if speaker not in phase.speakers and not (
                sides and speaker in SIDES and getattr(sides, speaker) in resolved
            ):
                problems.append(
                    (("phases", p, "script", speaker), f"{speaker!r} does not speak in this "
                     f"phase; its speakers: {', '.join(phase.speakers)}")
                )  # fmt: skip
    return problems


# ---------------------------------------------------------------------------- resolution


PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(
    text: str, variables: dict[str, Any], *, keep_escapes: bool = False
) -> tuple[str, list[str]]:
    """Replace ``{name}`` with its value (``{{``/``}}`` are literal braces).

    Returns the new text and the names that were not defined. Plain text replacement:
    values are never evaluated. ``keep_escapes`` leaves ``{{``/``}}`` for a later pass
    (placeholders filled per conversation or per speaker).
    """
    missing: list[str] = []

    text = text.strip()

    def repl(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token if keep_escapes else token[0]
        key = match.group(1)
        if key not in variables:
            missing.append(key)
            return token
        return str(variables[key])

    return PLACEHOLDER.sub(repl, text), missing


# Placeholders filled later than the file's variables: not listed among "vars defined".
LATE = frozenset({"motion", "side", *ANNOUNCE_FIELDS})


class _Substitution:
    """Fills ``{name}`` placeholders, collecting an error line for each undefined one."""

    def __init__(
        self, variables: dict[str, Any], positions: PositionMap, *, keep_escapes: bool = False
    ) -> None:
        self.variables = variables
        self.positions = positions
        self.keep_escapes = keep_escapes
        self.problems: list[str] = []

    def with_values(self, values: dict[str, Any], *, keep_escapes: bool) -> _Substitution:
        """The same substitution with more values, its problems reported here."""
        other = _Substitution({**self.variables, **values}, self.positions)
        other.keep_escapes, other.problems = keep_escapes, self.problems
        return other

    def __call__(self, text: str | None, loc: Loc) -> str | None:
        if text is None:
            return None
        result, missing = substitute(text, self.variables, keep_escapes=self.keep_escapes)
        defined = ", ".join(sorted(k for k in self.variables if k not in LATE)) or "none"
        for key in missing:
            message = f"undefined placeholder {{{key}}} (vars defined: {defined})"
            self.problems.append(self.positions.describe(loc, message))
        return result


def _agent(scenario: Scenario, i: int, sub: _Substitution, model: str | None) -> Agent:
    spec, defaults = scenario.agents[i], scenario.defaults
    sub = sub.with_values(_side_values(scenario.sides, spec.name), keep_escapes=sub.keep_escapes)
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
    texts += [p.instruction for p in scenario.phases if p.instruction]
    texts += [line for p in scenario.phases for line in (p.script or {}).values()]
    if scenario.moderator is not None:
        m = scenario.moderator
        texts += [t for t in (m.persona, m.announce, m.closing) if t]
    return {m.group(1) for text in texts for m in PLACEHOLDER.finditer(text) if m.group(1)}


def suggestion(name: str, choices: list[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest choice, ignoring case; else nothing."""
    lowered = {c.lower(): c for c in choices}
    hint = difflib.get_close_matches(name.lower(), list(lowered), n=1)
    return f" (did you mean {lowered[hint[0]]!r}?)" if hint else ""


def _check_overrides(
    scenario: Scenario, source: str, variables: dict[str, Any], models: dict[str | None, str]
) -> None:
    """Command-line variables and models must name something the scenario has."""
    problems = []
    known = set(scenario.vars) | placeholders(scenario)
    for key in variables:
        if key not in known:
            listed = ", ".join(sorted(known)) or "none"
            problems.append(
                f"{source}: --var {key}: the scenario has no variable {key!r}"
                f"{suggestion(key, sorted(known))}; its variables: {listed}"
            )
    names = [a.name for a in scenario.agents]
    for agent in models:
        if agent is not None and agent not in names:
            problems.append(
                f"{source}: --model {agent}=...: no agent {agent!r}{suggestion(agent, names)}; "
                f"agents: {', '.join(names)}"
            )
    if problems:
        raise ConfigError(problems)


def resolve(
    scenario: Scenario,
    source: str,
    positions: PositionMap | None = None,
    *,
    vars: dict[str, Any] | None = None,
    models: dict[str | None, str] | None = None,
    max_turns: int | None = None,
    repeat: int | None = None,
    seed: int | None = None,
) -> ResolvedScenario:
    """Merge defaults, substitute variables and fix the run parameters.

    The keywords come from the command line: ``vars`` (name -> value), ``models`` (agent
    name -> model; the key None means every agent), ``max_turns``, ``repeat``, ``seed``.
    """
    models = models or {}
    _check_overrides(scenario, source, vars or {}, models)
    variables: dict[str, Any] = {**scenario.vars, **(vars or {})}
    positions = positions or PositionMap(source)
    motions = _motions(scenario, source, positions)
    plain = _Substitution(variables, positions)  # motions may use the file's variables
    motions = tuple(plain(m, ("motions", i)) or "" for i, m in enumerate(motions))
    if plain.problems:
        raise ConfigError(plain.problems)
    # {motion} is each conversation's own: filled in as it starts, escapes kept till then.
    sub = _Substitution(
        {**variables, **({"motion": "{motion}"} if motions else {})},
        positions,
        keep_escapes=bool(motions),
    )
    agents = [
        _agent(scenario, i, sub, models.get(spec.name) or models.get(None))
        for i, spec in enumerate(scenario.agents)
    ]
    description = sub(scenario.description, ("description",)) or ""
    kickoff = sub(scenario.kickoff, ("kickoff",)) or ""
    phases = tuple(_phase(phase, p, sub, scenario.sides) for p, phase in enumerate(scenario.phases))
    moderator = _moderator(scenario.moderator, sub)
    if sub.problems:
        raise ConfigError(sub.problems)
    recorded = Overrides(
        vars=vars or None,
        models={k or "*": v for k, v in models.items()} or None,
        max_turns=max_turns,
        repeat=repeat,
        seed=seed,
    )
    return ResolvedScenario(
        name=scenario.name,
        description=description,
        source=source,
        agents=tuple(agents),
        order=scenario.order,
        max_turns=max_turns or _turn_limit(scenario),
        end=tuple(scenario.end),
        history=scenario.history,
        repeat=repeat or scenario.repeat,
        seed=seed if seed is not None else scenario.seed,
        kickoff=kickoff,
        vars=variables,
        backend=scenario.backend,
        hosts=tuple(scenario.hosts),
        api_key_env=scenario.api_key_env,
        overrides=recorded,
        phases=phases,
        moderator=moderator,
        motions=motions,
        sides=scenario.sides,
        jury=_jury(scenario.jury),
    ).hashed()


def _motions(scenario: Scenario, source: str, positions: PositionMap) -> tuple[str, ...]:
    """The motions listed, or read from their file (relative to the scenario's)."""
    motions = scenario.motions
    if motions is None:
        return ()
    if isinstance(motions, list):
        return tuple(m.strip() for m in motions)
    path = Path(motions.file).expanduser()
    if not path.is_absolute() and not source.startswith("<"):
        path = Path(source).parent / path
    try:
        return tuple(read_motions(path))
    except ValueError as exc:
        raise ConfigError(positions.describe(("motions", "file"), str(exc))) from None


def _moderator(spec: ModeratorSpec | None, sub: _Substitution) -> Moderator | None:
    """The moderator with variables filled in; the phase fields stay for each phase."""
    if spec is None:
        return None
    later = sub.with_values({key: f"{{{key}}}" for key in ANNOUNCE_FIELDS}, keep_escapes=True)
    announce = later(spec.announce, ("moderator", "announce")) or ""
    closing = later(spec.closing, ("moderator", "closing"))
    return Moderator(
        name=spec.name,
        model=spec.model,
        persona=sub(spec.persona, ("moderator", "persona")) or "",
        announce=announce,
        closing=closing,
        options=MODERATOR_OPTIONS.merged(spec.options),
    )


def _phase(phase: Phase, p: int, sub: _Substitution, sides: Sides | None) -> Phase:
    """The phase with sides named as their agents and variables filled in; ``{side}`` in
    the instruction is filled per speaker, as each speaks."""
    named = dict(sides.model_dump()) if sides else {}
    speakers = [named.get(s, s) for s in phase.speakers]
    late = sub.with_values({"side": "{side}"} if sides else {}, keep_escapes=True)
    instruction = late(phase.instruction, ("phases", p, "instruction"))
    script = {}
    for speaker, line in (phase.script or {}).items():
        agent = named.get(speaker, speaker)
        own = sub.with_values(_side_values(sides, agent), keep_escapes=sub.keep_escapes)
        script[agent] = own(line, ("phases", p, "script", speaker)) or ""
    return phase.model_copy(
        update={"speakers": speakers, "instruction": instruction, "script": script or None}
    )


def _side_values(sides: Sides | None, agent: str) -> dict[str, str]:
    side = sides.of(agent) if sides else None
    return {"side": side} if side else {}


def _turn_limit(scenario: Scenario) -> int:
    """The file's max_turns; with phases and none set, the turns the phases take."""
    if scenario.phases and "max_turns" not in scenario.model_fields_set:
        return min(MAX_TURNS, sum(phase.length for phase in scenario.phases))
    return scenario.max_turns


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
        "phases": Phase,
        "budget": Budget,
        "moderator": ModeratorSpec,
        "sides": Sides,
        "jury": JurySpec,
        "judges": JurorSpec,
    },
    unknown_key_hint=_options_hint,
    too_short={
        ("agents",): "a scenario needs at least two agents",
        ("jury", "judges"): "a jury needs at least one judge model",
    },
    mappings={
        "options": "a mapping of options",
        "defaults": "a mapping of defaults (model, persona, options, ...)",
        "stalemate": "a mapping of stalemate settings (repeats, similarity)",
        "vars": "a mapping of names to values",
        "budget": "a mapping of tokens and/or words",
        "moderator": "a mapping of moderator settings (name, model, announce, ...)",
        "sides": "a mapping of sides to agents (proposition, opposition)",
        "jury": "a mapping of jury settings (judges, vote, decide, ...)",
        "script": "a mapping of speaker names to lines",
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
