"""Metrics per group (model, agent, model and persona, side or phase), each with a
bootstrap interval.

Every metric is a ratio of sums over conversations: for each conversation and group a
numerator and a denominator (a rate's events and opportunities, a mean's total and
count), so each gets the same cluster-bootstrap interval (:mod:`runner.analysis.intervals`).
Turn metrics look at generated turns only: a scripted opening is the scenario's words,
not the model's. Grouped by phase, a group is a phase's speeches (every speaker's turns in
it), so only the turn metrics have values: a phase neither wins nor ends in an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from runner.analysis.features import lexical_diversity, text_features, words
from runner.analysis.frames import Frames
from runner.analysis.intervals import RESAMPLES, SEED, Estimate, ratio_estimate

By = Literal["model", "agent", "persona", "side", "phase"]
BY_CHOICES: tuple[By, ...] = ("model", "agent", "persona", "side", "phase")
NO_SIDE = "no side"  # the group of agents without a side (no sides in the scenario)
NO_PHASE = "no phase"  # the group of turns outside any phase (a scenario without phases)
# Metrics that belong to a speaker's whole conversation, not to its turns: no phase has them.
OUTCOME_METRICS = "win_rate loss_rate draw_rate concession_rate turns_to_concede error_rate".split()


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    label: str
    definition: str  # one sentence, as in docs/report.md
    unit: str  # how to read the number: "share", "words", "ms", ...


METRICS: tuple[Metric, ...] = (
    Metric("win_rate", "win rate", "Share of the group's finished conversations it won.", "share"),
    Metric("loss_rate", "loss rate", "Share of its finished conversations it lost.", "share"),
    Metric(
        "draw_rate",
        "draw rate",
        "Share of its finished conversations that ended with neither a winner nor a loser "
        "(a draw rule, or the turn limits).",
        "share",
    ),
    Metric(
        "concession_rate",
        "concession rate",
        "Share of its finished conversations it lost by an end rule that fired on its own turn.",
        "share",
    ),
    Metric(
        "turns_to_concede",
        "turns to concede",
        "Mean number of its own generated turns up to and including the one that conceded, "
        "over the conversations it conceded.",
        "turns",
    ),
    Metric("words_per_turn", "words / turn", "Mean number of words in a generated turn.", "words"),
    Metric(
        "tokens_per_turn",
        "tokens / turn",
        "Mean completion tokens per generated turn, as the engine counted them.",
        "tokens",
    ),
    Metric(
        "sentences_per_turn",
        "sentences / turn",
        "Mean number of sentences per generated turn (split at . ! ? or … before a space, "
        "and at line breaks).",
        "sentences",
    ),
    Metric(
        "over_length_rate",
        "over length",
        "Share of generated turns with more sentences than allowed: one when the speaker's "
        "persona, an opening line or the kickoff asks for one sentence per turn, else the "
        "--max-sentences limit when given.",
        "share",
    ),
    Metric(
        "questions_per_turn",
        "questions / turn",
        "Mean number of sentences ending in a question mark per generated turn.",
        "questions",
    ),
    Metric(
        "self_repetition",
        "self-repetition",
        "Share of a turn's word trigrams (the whole turn if shorter) that the same speaker "
        "already said earlier in the conversation, averaged over turns (0..1).",
        "share",
    ),
    Metric(
        "echo",
        "echo",
        "Share of a turn's word trigrams that appear in the turn it answers (the previous "
        "turn, by another speaker), averaged over turns (0..1).",
        "share",
    ),
    Metric(
        "lexical_diversity",
        "lexical diversity",
        "MTLD of everything the speaker generated in a conversation (lexicalrichness; "
        "length-robust, higher is more varied), averaged over conversations with 10+ words.",
        "MTLD",
    ),
    Metric(
        "sentiment",
        "sentiment",
        "Mean VADER compound score of generated turns, from -1 (negative) to 1 (positive).",
        "score",
    ),
    Metric(
        "off_character_rate",
        "off character",
        "Share of turns that mention being an AI or a language model, or refuse "
        '("I can\'t help with that").',
        "share",
    ),
    Metric(
        "language_switch_rate",
        "language switch",
        "Share of turns (3+ words, language detected by lingua) in another language than "
        "the conversation's: its scripted opening's, else its most common.",
        "share",
    ),
    Metric(
        "ttft_ms",
        "first token (ms)",
        "Mean client-side time to the first token of a generated turn, in milliseconds.",
        "ms",
    ),
    Metric(
        "tokens_per_s",
        "tokens / s",
        "Completion tokens per second of client-side reply time, summed over generated turns.",
        "tokens/s",
    ),
    Metric(
        "error_rate",
        "error rate",
        "Share of the group's conversations that ended in an error.",
        "share",
    ),
)
METRIC_NAMES = tuple(m.name for m in METRICS)


@dataclass(frozen=True, slots=True)
class GroupResult:
    group: str
    key: dict[str, str]
    conversations: int
    turns: int
    metrics: dict[str, Estimate]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            **self.key,
            "conversations": self.conversations,
            "turns": self.turns,
            "metrics": {name: e.to_dict() for name, e in self.metrics.items()},
        }


@dataclass(slots=True)
class Analysis:
    """What ``sparring report`` shows: metrics overall and per scenario, and the turn
    features the transcript browser displays."""

    by: By
    groups: list[GroupResult]
    scenarios: dict[str, list[GroupResult]]
    features: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)


Step = Callable[[str, int, int], None]


def analyse(
    frames: Frames,
    by: By = "model",
    *,
    max_sentences: int | None = None,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    progress: Step | None = None,
) -> Analysis:
    """Metrics per group over every conversation in ``frames``, and per scenario."""
    features = text_features(
        frames.turns, frames.agents, frames.conversations, max_sentences, progress
    )
    units = unit_table(frames, features, by)
    settings = {
        "by": by,
        "confidence": 0.95,
        "method": "percentile bootstrap over conversations (scipy.stats.bootstrap)",
        "resamples": resamples,
        "seed": seed,
        "max_sentences": max_sentences,
    }
    overall = group_results(units, seed=seed, resamples=resamples, progress=progress)
    scenarios: dict[str, list[GroupResult]] = {}
    names = sorted(units["scenario"].unique())
    for name in names:
        if len(names) == 1:
            scenarios[name] = overall
        else:
            part = units[units["scenario"] == name]
            scenarios[name] = group_results(part, seed=seed, resamples=resamples)
    return Analysis(by, overall, scenarios, features, settings)


def group_keys(agents: pd.DataFrame, by: By) -> tuple[pd.Series, list[dict[str, str]]]:
    """Each agent row's group label, and the fields that make the group (not for
    ``phase``: an agent speaks in several phases, see :func:`phase_labels`)."""
    if by == "phase":
        raise ValueError("phase groups are made of turns, not agents: use phase_labels")
    if by == "agent":
        labels = agents["agent"].astype(str)
        keys = [{"agent": a} for a in labels]
    elif by == "model":
        labels = agents["model"].astype(str)
        keys = [{"model": m} for m in labels]
    elif by == "side":  # a debate's proposition and opposition, whoever argued them
        labels = agents["side"].fillna(NO_SIDE).astype(str)
        keys = [{"side": side} for side in labels]
    else:
        personas = agents["persona"].fillna("").astype(str)
        labels = pd.Series(
            [f"{m} · {_short(p)}" for m, p in zip(agents["model"], personas, strict=True)],
            index=agents.index,
        )
        labels = _disambiguate(labels, agents["model"].astype(str) + "\0" + personas)
        keys = [{"model": m, "persona": p} for m, p in zip(agents["model"], personas, strict=True)]
    return labels, keys


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _disambiguate(labels: pd.Series, identity: pd.Series) -> pd.Series:
    """Numbers labels that two different identities share (two long personas alike)."""
    firsts: dict[str, list[str]] = {}
    for label, ident in zip(labels, identity, strict=True):
        seen = firsts.setdefault(label, [])
        if ident not in seen:
            seen.append(ident)
    return pd.Series(
        [
            label if len(firsts[label]) == 1 else f"{label} #{firsts[label].index(ident) + 1}"
            for label, ident in zip(labels, identity, strict=True)
        ],
        index=labels.index,
    )


def phase_labels(turns: pd.DataFrame) -> pd.Series:
    """Each turn's phase name, ``no phase`` for a turn outside any phase."""
    return turns["phase_name"].astype(object).where(turns["phase_name"].notna(), NO_PHASE)


def turn_groups(frames: Frames, by: By) -> pd.Series:
    """Each turn's group label (None for a speaker not among the conversation's agents)."""
    turns = frames.turns
    if by == "phase":
        return phase_labels(turns)
    agents = frames.agents
    labels, _ = group_keys(agents, by)
    lookup = dict(
        zip(zip(agents["conversation_id"], agents["agent"], strict=True), labels, strict=True)
    )
    return pd.Series(
        [lookup.get(k) for k in zip(turns["conversation_id"], turns["speaker"], strict=True)],
        index=turns.index,
        dtype=object,
    )


def unit_table(frames: Frames, features: pd.DataFrame, by: By) -> pd.DataFrame:
    """One row per agent per conversation (by phase: per agent, conversation and phase):
    its group, and each metric's numerator and denominator (columns ``<metric>__num`` and
    ``<metric>__den``)."""
    if by == "phase":
        return _phase_units(frames, features)
    agents = frames.agents
    labels, keys = group_keys(agents, by)
    units = pd.DataFrame(
        {
            "conversation_id": agents["conversation_id"],
            "scenario": agents["scenario"],
            "agent": agents["agent"],
            "group": labels,
            "key": keys,
        }
    )
    turn_sums = _turn_sums(frames.turns, features)
    units = units.merge(turn_sums, how="left", on=["conversation_id", "agent"])
    conv = frames.conversations.set_index("conversation_id")
    units = units.join(conv[["status", "winner", "loser", "outcome_reason"]], on="conversation_id")
    concede = _concessions(frames.turns)
    units = units.merge(concede, how="left", on=["conversation_id", "agent"])
    units = units.fillna({c: 0 for c in units.columns if c.endswith(("__num", "__den"))})
    _outcome_columns(units)
    return units


def _phase_units(frames: Frames, features: pd.DataFrame) -> pd.DataFrame:
    """One row per conversation, speaker and phase it spoke in; groups in phase order."""
    turns = frames.turns
    labels = phase_labels(turns)
    units = _turn_sums(turns, features, labels)
    units = units.rename(columns={"part": "group"})
    scenarios = frames.conversations.set_index("conversation_id")["scenario"]
    units["scenario"] = units["conversation_id"].map(scenarios)
    units["key"] = [{"phase": str(label)} for label in units["group"]]
    # Phases listed as they are played: by their first index anywhere, "no phase" last.
    index = turns["phase"].astype(float).fillna(np.inf)
    rank = index.groupby(labels).min()
    units["rank"] = units["group"].map(rank)
    for name in OUTCOME_METRICS:
        units[f"{name}__num"] = 0.0
        units[f"{name}__den"] = 0.0
    units["turns"] = units["turns"].fillna(0).astype(int)
    return units


def _turn_sums(
    turns: pd.DataFrame, features: pd.DataFrame, part: pd.Series | None = None
) -> pd.DataFrame:
    """Per conversation and speaker (and ``part`` of its turns, when given: a column
    ``part``): each turn metric's numerator and denominator."""
    generated = ~turns["scripted"].to_numpy(dtype=bool)
    t = features[generated].copy()
    t["conversation_id"] = turns["conversation_id"][generated]
    t["agent"] = turns["speaker"][generated]
    keys = ["conversation_id", "agent"]
    if part is not None:
        t["part"] = part[generated]
        keys.append("part")
    tokens = turns["completion_tokens"][generated].astype(float)
    latency_s = turns["latency_ms"][generated].astype(float) / 1000.0
    both = tokens.notna() & latency_s.notna() & (latency_s > 0)
    columns = {
        "words_per_turn": (t["words"], 1.0),
        "tokens_per_turn": (tokens, tokens.notna().astype(float)),
        "sentences_per_turn": (t["sentences"], 1.0),
        "over_length_rate": (t["over_length"], t["over_length"].notna().astype(float)),
        "questions_per_turn": (t["questions"], 1.0),
        "self_repetition": (t["self_repetition"], t["self_repetition"].notna().astype(float)),
        "echo": (t["echo"], t["echo"].notna().astype(float)),
        "sentiment": (t["sentiment"], t["sentiment"].notna().astype(float)),
        "off_character_rate": (t["off_character"].astype(float), 1.0),
        "language_switch_rate": (
            t["language_switch"],
            t["language_switch"].notna().astype(float),
        ),
        "ttft_ms": (
            turns["ttft_ms"][generated].astype(float),
            turns["ttft_ms"][generated].notna().astype(float),
        ),
        "tokens_per_s": (tokens.where(both), latency_s.where(both)),
    }
    table = pd.DataFrame({key: t[key] for key in keys})
    for name, (num, den) in columns.items():
        table[f"{name}__num"] = pd.Series(num, index=t.index).astype(float).fillna(0.0)
        table[f"{name}__den"] = pd.Series(den, index=t.index).astype(float).fillna(0.0)
    table["turns"] = 1
    sums = table.groupby(keys, sort=False).sum().reset_index()
    diversity = _diversity(t.assign(content=turns["content"][generated]), keys)
    sums = sums.merge(diversity, how="left", on=keys)
    return sums


def _diversity(generated: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rows = []
    for group, contents in generated.groupby(keys, sort=False)["content"]:
        value = lexical_diversity([w for text in contents for w in words(text)])
        rows.append((*group, 0.0 if np.isnan(value) else value, float(not np.isnan(value))))
    return pd.DataFrame(rows, columns=[*keys, "lexical_diversity__num", "lexical_diversity__den"])


def _concessions(turns: pd.DataFrame) -> pd.DataFrame:
    """For each conversation lost by an end rule that fired on the loser's own turn: the
    loser's generated turns up to and including that turn."""
    t = turns[
        (turns["status"] == "success")
        & (turns["outcome_reason"] == "end_rule")
        & (turns["speaker"] == turns["loser"])
    ]
    deciding = t[t["index"] == t["outcome_turn"]]["conversation_id"]
    before = t["index"] <= t["outcome_turn"]
    own = t[t["conversation_id"].isin(deciding) & ~t["scripted"] & before]
    counts = own.groupby(["conversation_id", "speaker"]).size()
    return pd.DataFrame(
        {
            "conversation_id": counts.index.get_level_values(0),
            "agent": counts.index.get_level_values(1),
            "conceded": 1.0,
            "own_turns": counts.to_numpy(dtype=float),
        }
    )


def _outcome_columns(units: pd.DataFrame) -> None:
    finished = (units["status"] == "success").astype(float)
    won = (units["winner"] == units["agent"]).astype(float)
    lost = (units["loser"] == units["agent"]).astype(float)
    neither = (units["winner"].isna() & units["loser"].isna()).astype(float)
    conceded = units["conceded"].fillna(0.0).astype(float)
    outcome = {
        "win_rate": (won * finished, finished),
        "loss_rate": (lost * finished, finished),
        "draw_rate": (neither * finished, finished),
        "concession_rate": (conceded, finished),
        "turns_to_concede": (units["own_turns"].fillna(0.0), conceded),
        "error_rate": ((units["status"] == "error").astype(float), pd.Series(1.0, units.index)),
    }
    for name, (num, den) in outcome.items():
        units[f"{name}__num"] = num.astype(float)
        units[f"{name}__den"] = den.astype(float)
    units["turns"] = units["turns"].fillna(0).astype(int)


def group_results(
    units: pd.DataFrame,
    *,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    progress: Step | None = None,
) -> list[GroupResult]:
    """Each group's metrics, groups in name order (or ``rank`` order, where units have
    that column), conversations in id order (so the same
    transcripts give the same numbers whatever order they were read in)."""
    value_columns = [f"{m}__{part}" for m in METRIC_NAMES for part in ("num", "den")]
    per_conversation = (
        units.groupby(["group", "conversation_id"], sort=True)[[*value_columns, "turns"]]
        .sum()
        .reset_index()
    )
    keys = dict(zip(units["group"], units["key"], strict=True))
    results = []
    groups = list(per_conversation.groupby("group", sort=True))
    if "rank" in units.columns:  # groups with an order of their own (phases as played)
        rank = units.groupby("group")["rank"].min()
        groups.sort(key=lambda item: (rank[item[0]], str(item[0])))
    for done, (group, part) in enumerate(groups):
        if progress is not None:
            progress("intervals", done, len(groups))
        metrics = {
            m: ratio_estimate(
                part[f"{m}__num"].to_numpy(),
                part[f"{m}__den"].to_numpy(),
                seed=seed,
                resamples=resamples,
            )
            for m in METRIC_NAMES
        }
        results.append(
            GroupResult(
                group=str(group),
                key=keys[group],
                conversations=len(part),
                turns=int(part["turns"].sum()),
                metrics=metrics,
            )
        )
    return results
