"""The resolved scenario: one typed snapshot of what a run executes.

Defaults merged, variables substituted, command-line changes applied: a
:class:`ResolvedScenario` is what the runner plays, what its hash is taken from
(:meth:`ResolvedScenario.content`), what every transcript's run line stores
(``RunRecord.resolved``) and what ``sparring rerun`` validates back
(:func:`snapshot_of`). A field added here is hashed, recorded and replayed with nothing
else to change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agents.agent import Agent
from agents.backends import Requested
from agents.errors import ConfigError
from runner.scenario.debate import Jury, Moderator, Sides
from runner.scenario.ending import EndRule
from runner.scenario.phases import Phase

Order = Literal["round_robin", "random", "simultaneous"]
ORDERS: tuple[Order, ...] = ("round_robin", "random", "simultaneous")

# Left out of the hash: where the file lives, how often and with which seed it is run, and
# what the command line changed, so every run of the same scenario shares one hash.
UNHASHED = frozenset({"source", "repeat", "seed", "hash", "overrides", "backend_set_by"})


class Overrides(BaseModel):
    """What the command line changed, as recorded (``None``: not changed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vars: dict[str, Any] | None = Field(None, description="--var NAME=VALUE")
    models: dict[str, str] | None = Field(
        None, description="--model: agent name, or * for every agent, to model"
    )
    max_turns: int | None = None
    repeat: int | None = None
    seed: int | None = None
    rerun_of: str | None = Field(None, description="the conversation a rerun plays again")

    def recorded(self) -> dict[str, Any]:
        """The changes that were made, as the run line records them."""
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True, slots=True)
class ResolvedScenario:
    """A scenario with defaults merged and variables substituted: what a run executes."""

    name: str
    description: str
    source: str
    agents: tuple[Agent, ...]
    order: Order
    max_turns: int
    end: tuple[EndRule, ...]
    history: Literal["all"] | int
    repeat: int
    seed: int | None
    kickoff: str
    vars: dict[str, Any]
    backend: Requested | None
    hosts: tuple[str, ...]
    api_key_env: str | None
    hash: str = field(default="")
    overrides: Overrides = field(default_factory=Overrides)
    # Where ``backend`` came from, for the run line's reason.
    backend_set_by: str = "backend in the file"
    phases: tuple[Phase, ...] = ()
    moderator: Moderator | None = None
    motions: tuple[str, ...] = ()
    sides: Sides | None = None
    jury: Jury | None = None

    @property
    def voices(self) -> tuple[Agent, ...]:
        """Every agent a model speaks for: the debaters, a model-backed moderator, the jury."""
        extra = [a for a in (self.moderator.agent if self.moderator else None,) if a]
        jurors = self.jury.agents() if self.jury else []
        return (*self.agents, *extra, *jurors)

    @property
    def labelled(self) -> bool:
        """Whether a speaker's turns name the others: more than two voices in the room."""
        return len(self.agents) + (self.moderator is not None) > 2

    @property
    def models(self) -> list[str]:
        return sorted({agent.model for agent in self.voices})

    def content(self) -> dict[str, Any]:
        """What the scenario makes happen, JSON-ready: hashed into ``hash``. Options and
        end rules list only what is set, so a new option left unset changes no hash."""
        data: dict[str, Any] = SNAPSHOT.dump_python(self, mode="json", exclude=set(UNHASHED))
        for agent in data["agents"]:
            agent["options"] = _set(agent["options"])
        data["end"] = [_set(rule) for rule in data["end"]]
        # Fields a flat scenario leaves empty are left out: its hash is what it always was.
        for key in OPTIONAL:
            if not data[key]:
                del data[key]
        return data

    def hashed(self) -> ResolvedScenario:
        """This scenario with its ``hash`` taken from :meth:`content`."""
        text = json.dumps(self.content(), sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()
        return _replace(self, hash=f"sha256:{digest}")

    def snapshot(self) -> dict[str, Any]:
        """Every field, JSON-ready: what a run line stores."""
        data: dict[str, Any] = SNAPSHOT.dump_python(self, mode="json")
        return data


def _set(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _replace(scenario: ResolvedScenario, **changes: Any) -> ResolvedScenario:
    import dataclasses

    return dataclasses.replace(scenario, **changes)


# Debate fields: absent from the hash of a scenario that does not use them.
OPTIONAL = ("phases", "moderator", "motions", "sides", "jury")

SNAPSHOT: TypeAdapter[ResolvedScenario] = TypeAdapter(ResolvedScenario)
FIELDS = frozenset(f.name for f in fields(ResolvedScenario))


def snapshot_of(data: dict[str, Any], where: str, prefix: str = "") -> ResolvedScenario:
    """The scenario a run line stored, validated back; a ConfigError naming ``where`` (the
    file and line) and the field (after ``prefix``) for anything it cannot be."""
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ConfigError(
            f"{where}: {prefix}{unknown[0]}: not a scenario field this version knows "
            "(written by a newer sparring: upgrade to replay it)"
        )
    try:
        return SNAPSHOT.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(
            [
                f"{where}: {prefix}{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            ]
        ) from None
