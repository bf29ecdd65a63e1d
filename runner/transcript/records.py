"""The transcript schema: one typed model per record type, used to write and to read.

A transcript is JSONL: a ``run`` record, one ``turn`` record per turn, and an ``end``
record. Every line carries ``type`` and ``conversation_id``, so tools reading many files
at once (pandas, DuckDB) can group lines without the file name.

Compatibility rules (``SCHEMA_VERSION``):

- Adding a field or a record type is not a breaking change: the version stays, readers
  keep unknown fields (``model_extra``) and skip record types they do not know.
- Removing or renaming a field, or changing its meaning or type, is breaking: the version
  goes up and older readers refuse the file with a message to upgrade.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1

Status = Literal["success", "error", "cancelled"]


class Record(BaseModel):
    # Unknown fields are kept: a newer writer may add fields that older readers carry along.
    model_config = ConfigDict(frozen=True, extra="allow")


class AgentInfo(Record):
    """One agent of the conversation, as it was run."""

    name: str = Field(description="the speaker label")
    model: str = Field(description="the model that spoke for it")
    model_digest: str | None = Field(None, description="the model's digest, where reported")
    persona: str = Field("", description="the system prompt, resolved")
    opening: str | None = Field(None, description="its scripted first line, if any")
    max_turns: int | None = Field(None, description="its own turn limit")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="generation options as resolved, including the agent's seed",
    )
    ignored_options: list[str] = Field(
        default_factory=list, description="options set but not sent: the engine has no such knob"
    )
    backend: str | None = Field(None, description="the engine")
    host: str | None = Field(None, description="where the engine runs (credentials removed)")


class TimeoutsInfo(Record):
    connect_s: float | None = None
    first_token_s: float | None = None
    reply_s: float | None = None


class RunRecord(Record):
    """The first line: what was run, with which models, seeds and options."""

    type: Literal["run"] = "run"
    schema_version: int = Field(SCHEMA_VERSION, description="format version")
    run_id: str = Field(description="id of the invocation, shared by its conversations")
    conversation_id: str = Field(description="id of this conversation")
    scenario: str = Field(description="the scenario's name")
    description: str = Field("", description="the scenario's description, resolved")
    source: str | None = Field(None, description="path of the scenario file")
    scenario_hash: str = Field(
        description="sha256 of the resolved scenario, without repeat count and seed"
    )
    repeat_index: int = Field(0, description="which run of the scenario this is, from 0")
    repeat: int = Field(1, description="how many runs were planned")
    seed: int = Field(description="this conversation's seed")
    base_seed: int | None = Field(None, description="the seed `seed` was derived from")
    order: str = Field(description="round_robin, random or simultaneous")
    history: str | int = Field("all", description="all, or how many turns each agent sees")
    max_turns: int = Field(description="the conversation's turn limit")
    kickoff: str | None = Field(None, description="what an agent speaking first is sent")
    end_rules: list[dict[str, Any]] = Field(default_factory=list, description="as resolved")
    vars: dict[str, Any] = Field(default_factory=dict, description="variable values used")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="what the command line changed: vars, models (agent or * -> model), "
        "max_turns, repeat, seed",
    )
    agents: list[AgentInfo]
    motion: str | None = Field(None, description="the motion debated, drawn from motions")
    sides: dict[str, str] | None = Field(
        None, description="side (proposition, opposition) -> the agent arguing it"
    )
    moderator: AgentInfo | None = Field(
        None, description="the moderator of a phased debate (model empty: it reads its lines)"
    )
    resolved: dict[str, Any] | None = Field(
        None,
        description="the resolved scenario whole, as sparring rerun validates it back "
        "(runner.scenario.snapshot.ResolvedScenario); absent in files written before it",
    )
    backend: str = Field(description="the first agent's engine")
    backend_reason: str | None = Field(None, description="why that engine was chosen")
    host: str | None = Field(None, description="where it runs (credentials removed)")
    timeouts: TimeoutsInfo = Field(default_factory=TimeoutsInfo)
    sparring_version: str
    started_at: str = Field(description="UTC, ISO 8601")
    tournament: str | None = Field(None, description="the tournament this game belongs to")
    tournament_hash: str | None = Field(None, description="sha256 of the tournament")
    game_id: str | None = Field(None, description="the game's stable id in its tournament")

    def agent(self, name: str | None) -> AgentInfo | None:
        return next((a for a in self.agents if a.name == name), None)


class AttemptError(Record):
    """Why one attempt at a turn failed (the turn was retried)."""

    kind: str
    message: str


class TurnRecord(Record):
    """One turn: who said what, how long it took, what it cost."""

    type: Literal["turn"] = "turn"
    conversation_id: str | None = Field(None, description="as on the run line")
    index: int = Field(description="0-based turn number")
    round: int = Field(description="1-based round (one pass over the agents)")
    speaker: str
    model: str
    content: str = Field(description="what was said, exactly as generated")
    started_at: str
    ended_at: str
    ttft_ms: float | None = Field(None, description="client-side time to first token")
    latency_ms: float | None = Field(None, description="client-side time for the whole reply")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    done_reason: str | None = Field(None, description="stop, length, or the engine's word")
    attempts: int = Field(1, description="tries it took; 0 for a scripted line")
    attempt_errors: list[AttemptError] = Field(
        default_factory=list, description="what went wrong in each failed attempt, in order"
    )
    scripted: bool = Field(False, description="an opening said verbatim")
    seed: int | None = Field(None, description="the sampling seed of this request")
    server: dict[str, float] = Field(
        default_factory=dict, description="engine-side timings in ms, where reported"
    )
    host: str | None = Field(None, description="the host that answered, if not the run's")
    phase: int | None = Field(None, description="index of its phase; null without phases")
    role: str | None = Field(
        None,
        description="the speaker's side (proposition, opposition), or moderator for the "
        "moderator's lines; null without sides",
    )
    budget: dict[str, int] | None = Field(
        None, description="the phase's budget for this speech: tokens and/or words"
    )
    words: int | None = Field(None, description="words in the speech, counted under a budget")
    overrun: list[str] = Field(
        default_factory=list,
        description="budgets the speech reached: words (more words than allowed, the text "
        "kept whole) and tokens (the engine stopped it at the token budget)",
    )


class PhaseRecord(Record):
    """The start of a phase, written before its first turn."""

    type: Literal["phase"] = "phase"
    conversation_id: str | None = Field(None, description="as on the run line")
    index: int = Field(description="0-based phase number")
    name: str
    speakers: list[str] = Field(description="agent names, in speaking order")
    turns: int = Field(description="turns per speaker")
    instruction: str | None = Field(None, description="added to each speaker's prompt")
    budget: dict[str, int] | None = Field(None, description="tokens and/or words per speech")
    first_turn: int = Field(description="index of the phase's first turn")
    started_at: str = Field(description="UTC, ISO 8601")


class Outcome(Record):
    """Who won, and why the conversation ended."""

    winner: str | None = None
    loser: str | None = None
    reason: str = Field(
        description="end_rule, max_turns, agent_turn_limits, phases (all played), jury, error "
        "or cancelled"
    )
    rule: str | None = Field(None, description="the rule that fired")
    turn: int | None = Field(None, description="index of the deciding or last turn")
    matched: str | None = Field(None, description="the sentence that fired the rule")
    votes: dict[str, dict[str, int]] | None = Field(
        None,
        description="a jury's tally per stage (before, after): for, against, undecided, "
        "each judge counted once (its two orders agreeing, else undecided)",
    )


class Totals(Record):
    turns: int = 0
    generated_turns: int = 0
    scripted_turns: int = 0
    # None when the engine did not report counts for every generated turn.
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    latency_ms: float = 0.0
    retries: int = 0


class ErrorInfo(Record):
    """Why a conversation failed."""

    type: str = Field(description="the exception's class")
    kind: str = Field(description="unavailable, timeout, server_error, ..., internal")
    message: str
    retryable: bool = False
    backend: str | None = None
    host: str | None = None
    model: str | None = None
    status: int | None = Field(None, description="HTTP status, where there was one")
    attempts: int | None = None
    traceback: str | None = Field(None, description="for internal errors: where, to report it")


class EndRecord(Record):
    """The last line: how the conversation ended."""

    type: Literal["end"] = "end"
    conversation_id: str | None = Field(None, description="as on the run line")
    status: Status
    outcome: Outcome
    turns: int = Field(description="number of turns")
    totals: Totals = Field(default_factory=Totals)
    ended_at: str
    duration_s: float | None = None
    error: ErrorInfo | None = None


class VerdictRecord(Record):
    """A judge's verdict on a finished game, appended after its ``end`` line.

    The judge reads the conversation with speakers anonymised; ``order`` says which seat
    was presented as Speaker 1. Every game is judged in both orders.
    """

    type: Literal["verdict"] = "verdict"
    conversation_id: str | None = Field(None, description="as on the run line")
    judge_model: str
    order: Literal["as_seated", "swapped"] = Field(
        description="as_seated: the first seat is Speaker 1; swapped: it is Speaker 2"
    )
    winner: Literal["first", "second", "draw"] | None = Field(
        None, description="the verdict (Speaker 1, Speaker 2, draw); null: no valid verdict"
    )
    speaker: str | None = Field(None, description="the agent the verdict names, if any")
    reason: str | None = None
    raw: str = Field("", description="the judge's reply, exactly")
    seed: int | None = None
    attempts: int = 1
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = Field(None, description="why there is no valid verdict")
    at: str = Field("", description="UTC, ISO 8601")


class VoteRecord(Record):
    """One judge's vote on the motion in one presentation order, before or after the
    debate, written as it is cast."""

    type: Literal["vote"] = "vote"
    conversation_id: str | None = Field(None, description="as on the run line")
    judge: str = Field(description="the judge's name in the jury")
    model: str = Field(description="the judge's model")
    stage: Literal["before", "after"] = Field(description="before or after the debate")
    order: Literal["as_seated", "swapped"] = Field(
        description="as_seated: the proposition is presented first (Speaker 1, and for "
        "before against); swapped: the opposition is"
    )
    vote: Literal["for", "against", "undecided"] | None = Field(
        None, description="on the motion; null: no valid vote"
    )
    side: str | None = Field(None, description="the side the vote favours, if any")
    reason: str | None = None
    self_judged: bool = Field(False, description="the judge's model is a debater's")
    raw: str = Field("", description="the judge's reply, exactly")
    seed: int | None = None
    attempts: int = 1
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = Field(None, description="why there is no valid vote")
    at: str = Field("", description="UTC, ISO 8601")


AnyRecord = Annotated[
    RunRecord | PhaseRecord | TurnRecord | VoteRecord | EndRecord | VerdictRecord,
    Field(discriminator="type"),
]
RECORD_TYPES: dict[str, type[Record]] = {
    "run": RunRecord,
    "phase": PhaseRecord,
    "turn": TurnRecord,
    "vote": VoteRecord,
    "end": EndRecord,
    "verdict": VerdictRecord,
}


def json_schema() -> dict[str, Any]:
    """JSON Schema of one transcript line, as this version writes it."""
    schema = TypeAdapter(AnyRecord).json_schema(mode="serialization")
    schema["title"] = "sparring transcript line"
    schema["description"] = (
        f"One line of a sparring transcript (schema_version {SCHEMA_VERSION}). Readers skip "
        "record types they do not know and keep unknown fields."
    )
    return schema
