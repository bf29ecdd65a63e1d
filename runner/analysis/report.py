"""The HTML report: one self-contained file that works offline.

Model output is untrusted, so the page keeps it away from markup: everything that comes
from a transcript (content, speaker, model, scenario names) travels as JSON inside a
``<script type="application/json">`` block, escaped so no text can close that block, and
the page's own script puts it on screen with ``textContent`` only. A Content-Security-
Policy allows nothing but the page's own script and style (by hash) and data: images, so
even a mistake cannot run injected script or reach the network. Charts are SVG images.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from importlib import resources
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from runner import __version__
from runner.analysis.charts import Chart, distribution_chart, interval_chart
from runner.analysis.frames import Frames
from runner.analysis.leaderboard import LeaderboardRow, Standings
from runner.analysis.metrics import METRICS, Analysis, GroupResult, turn_groups
from runner.scenario.phases import count_words

# Per-turn values sent to the transcript browser, in this order (arrays, not objects: the
# field names would otherwise repeat on every one of 100,000 turns).
# A moderator's line is among them (speaker by name, role "moderator", no measures).
TURN_FIELDS = (
    "speaker content scripted words sentences tokens ttft_ms latency_ms sentiment echo "
    "self_repetition language over_length off_character questions index phase role overrun"
).split()
SKIPPED_SHOWN = 50


def script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` (so no
    ``</script>`` or ``<!--``), and no U+2028/U+2029, which old parsers treat as line ends."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escape in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def _asset(name: str) -> str:
    return resources.files("runner.analysis").joinpath("assets", name).read_text("utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and pandas' NA become null, numpy scalars plain numbers."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value


def _runs(keys: Sequence[Any]) -> Iterator[tuple[Any, int, int]]:
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            yield keys[start], start, i
            start = i


def _roster(agents: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    roster: dict[str, list[dict[str, Any]]] = {}
    for cid, name, model, persona, side in zip(
        agents["conversation_id"],
        agents["agent"],
        agents["model"],
        agents["persona"],
        agents["side"],
        strict=True,
    ):
        roster.setdefault(cid, []).append(
            {"name": name, "model": model, "persona": _clean(persona) or "", "side": _clean(side)}
        )
    return roster


def _turn_rows(turns: pd.DataFrame, features: pd.DataFrame) -> list[list[Any]]:
    """Each turn as a list of TURN_FIELDS values (the speaker still by name)."""
    columns = {
        "speaker": turns["speaker"].tolist(),
        "content": turns["content"].tolist(),
        "scripted": turns["scripted"].astype(int).tolist(),
        "tokens": turns["completion_tokens"].tolist(),
        "ttft_ms": turns["ttft_ms"].tolist(),
        "latency_ms": turns["latency_ms"].tolist(),
        "index": turns["index"].tolist(),
        "phase": turns["phase"].tolist(),
        "role": turns["role"].tolist(),
        "overrun": [list(o) if isinstance(o, list) and o else None for o in turns["overrun"]],
        **{name: features[name].tolist() for name in TURN_FIELDS if name in features.columns},
    }
    ordered = [columns[name] for name in TURN_FIELDS]
    return [[_clean(values[i]) for values in ordered] for i in range(len(turns))]


def _moderators(moderator: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Each debate's moderator: its name, and its model when it speaks in its own words."""
    first = moderator.drop_duplicates("conversation_id")
    return {
        cid: {"name": name, "model": _clean(model) or None}
        for cid, name, model in zip(
            first["conversation_id"], first["speaker"], first["model"], strict=True
        )
    }


def _moderator_lines(moderator: pd.DataFrame) -> dict[str, list[list[Any]]]:
    """Each conversation's moderator lines as turn rows: the speaker by name, no measures."""
    lines: dict[str, list[list[Any]]] = {}
    for m in moderator.itertuples(index=False):
        row: list[Any] = [None] * len(TURN_FIELDS)
        for name, value in (
            ("speaker", m.speaker),
            ("content", m.content),
            ("scripted", int(bool(m.scripted))),
            ("index", m.index),
            ("phase", m.phase),
            ("role", "moderator"),
        ):
            row[TURN_FIELDS.index(name)] = _clean(value)
        lines.setdefault(m.conversation_id, []).append(row)
    return lines


def _phase_tables(frames: Frames) -> dict[str, list[dict[str, Any]]]:
    """Each conversation's phases as played: per speaker its turns, words and overruns."""
    turns = frames.turns
    spoken = pd.DataFrame(
        {
            "conversation_id": turns["conversation_id"],
            "phase": turns["phase"],
            "speaker": turns["speaker"],
            # Counted as the budget counts them, so words and overruns agree.
            "words": turns["content"].fillna("").map(count_words),
            "words_over": [isinstance(o, list) and "words" in o for o in turns["overrun"]],
            "tokens_over": [isinstance(o, list) and "tokens" in o for o in turns["overrun"]],
        }
    ).dropna(subset=["phase"])
    sums = {key: part for key, part in spoken.groupby(["conversation_id", "phase"], sort=False)}
    tables: dict[str, list[dict[str, Any]]] = {}
    for p in frames.phases.itertuples(index=False):
        part = sums.get((p.conversation_id, p.index))
        speakers = []
        for speaker in p.speakers:
            own = part[part["speaker"] == speaker] if part is not None else spoken.iloc[:0]
            speakers.append(
                {
                    "speaker": speaker,
                    "turns": len(own),
                    "words": _clean(own["words"].sum()) if len(own) else 0,
                    "words_over": int(own["words_over"].sum()),
                    "tokens_over": int(own["tokens_over"].sum()),
                }
            )
        tables.setdefault(p.conversation_id, []).append(
            {
                "index": _clean(p.index),
                "name": p.name,
                "turns": _clean(p.turns),
                "budget": p.budget or None,
                "first": _clean(p.first_turn),
                "speakers": speakers,
            }
        )
    return tables


def _votes(votes: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for v in votes.itertuples(index=False):
        found.setdefault(v.conversation_id, []).append(
            {
                "judge": v.judge,
                "model": v.model,
                "stage": v.stage,
                "order": v.order,
                "vote": _clean(v.vote),
                "side": _clean(v.side),
                "reason": _clean(v.reason),
                "error": _clean(v.error),
                "self_judged": bool(v.self_judged),
            }
        )
    return found


def _by_index(rows: list[list[Any]]) -> list[list[Any]]:
    at = TURN_FIELDS.index("index")
    return sorted(rows, key=lambda row: -1 if row[at] is None else row[at])


def conversation_payload(frames: Frames, features: pd.DataFrame) -> list[dict[str, Any]]:
    """Every conversation with its agents and turns, for the transcript browser; a turn's
    speaker is its agent's position in the conversation's agent list."""
    roster = _roster(frames.agents)
    rows = _turn_rows(frames.turns, features)
    moderator = _moderator_lines(frames.moderator)
    moderators = _moderators(frames.moderator)
    phases = _phase_tables(frames)
    votes = _votes(frames.votes)
    spans = {cid: (a, b) for cid, a, b in _runs(frames.turns["conversation_id"].tolist())}
    # Listed as a person would look for them: by scenario, then in the order they ran.
    ordered = frames.conversations.sort_values(
        ["scenario", "started_at", "repeat_index", "conversation_id"], kind="stable"
    )
    out = []
    for c in ordered.itertuples(index=False):
        agents = roster.get(c.conversation_id, [])
        names = [a["name"] for a in agents]
        start, stop = spans.get(c.conversation_id, (0, 0))
        turns = rows[start:stop]
        for turn in turns:
            if turn[0] in names:
                turn[0] = names.index(turn[0])
        lines = moderator.get(c.conversation_id)
        if lines:
            turns = _by_index(turns + lines)
        out.append(
            {
                "id": c.conversation_id,
                "scenario": c.scenario,
                "status": c.status,
                "reason": _clean(c.outcome_reason),
                "rule": _clean(c.outcome_rule),
                "winner": _clean(c.winner),
                "loser": _clean(c.loser),
                "turn": _clean(c.outcome_turn),
                "matched": _clean(c.matched),
                "error": _clean(c.error_message),
                "seed": _clean(c.seed),
                "repeat": _clean(c.repeat_index),
                "repeats": _clean(c.repeat),
                "game": _clean(c.game_id),
                "path": c.path,
                "started": c.started_at,
                "agents": agents,
                "turns": turns,
                "motion": _clean(c.motion),
                "moderator": moderators.get(c.conversation_id),
                "phases": phases.get(c.conversation_id, []),
                "votes": votes.get(c.conversation_id, []),
                "tally": c.votes if isinstance(c.votes, dict) else None,
            }
        )
    return out


def _distributions(frames: Frames, analysis: Analysis) -> list[Chart]:
    """Turn length and latency by group, from generated turns."""
    turns = frames.turns
    generated = ~turns["scripted"].to_numpy(dtype=bool)
    charts: list[Chart] = []
    groups = [g.group for g in analysis.groups]
    who = turn_groups(frames, analysis.by)[generated]
    for name, title, values in (
        ("words_dist", "words per turn", analysis.features["words"]),
        ("latency_dist", "reply latency (ms)", turns["latency_ms"]),
        ("ttft_dist", "time to first token (ms)", turns["ttft_ms"]),
    ):
        series = pd.to_numeric(values[generated], errors="coerce").astype(float)
        arrays = [series[who == g].to_numpy(dtype=float) for g in groups]
        chart = distribution_chart(name, title, groups, arrays)
        if chart is not None:
            charts.append(chart)
    return charts


def charts(frames: Frames, analysis: Analysis) -> list[Chart]:
    found = [interval_chart(m, analysis.groups) for m in METRICS]
    return [c for c in found if c is not None] + _distributions(frames, analysis)


def _groups(results: Sequence[GroupResult]) -> list[dict[str, Any]]:
    return [g.to_dict() for g in results]


def payload(
    frames: Frames,
    analysis: Analysis,
    leaderboard: Standings | Sequence[LeaderboardRow] | None = None,
    sources: Sequence[str] = (),
) -> dict[str, Any]:
    if leaderboard is not None and not isinstance(leaderboard, Standings):
        leaderboard = Standings(rows=list(leaderboard))
    return {
        "version": __version__,
        "sources": list(sources),
        "settings": analysis.settings,
        "metrics": [
            {"name": m.name, "label": m.label, "definition": m.definition, "unit": m.unit}
            for m in METRICS
        ],
        "groups": _groups(analysis.groups),
        "scenarios": [
            {"scenario": name, "groups": _groups(results)}
            for name, results in analysis.scenarios.items()
        ],
        "leaderboard": [row.model_dump() for row in leaderboard.rows]
        if leaderboard and leaderboard.rows
        else None,
        "ratingMethod": leaderboard.method if leaderboard else None,
        "judges": leaderboard.judges if leaderboard else None,
        "skipped": [[str(p), reason] for p, reason in frames.skipped[:SKIPPED_SHOWN]],
        "skippedCount": len(frames.skipped),
        "turnFields": TURN_FIELDS,
        "conversations": conversation_payload(frames, analysis.features),
    }


def _figure(chart: Chart) -> str:
    # Only constant text reaches the markup here: metric labels and a base64 data: URI.
    return (
        f'<figure class="chart" data-chart="{chart.name}"><img src="{chart.uri}" '
        f'alt="{chart.title}"></figure>'
    )


def render_html(
    frames: Frames,
    analysis: Analysis,
    leaderboard: Standings | Sequence[LeaderboardRow] | None = None,
    sources: Sequence[str] = (),
) -> str:
    """The whole report page as one string."""
    script = _asset("report.js")
    style = _asset("report.css")
    page = Template(_asset("report.html"))
    data = script_json(payload(frames, analysis, leaderboard, sources))
    figures = charts(frames, analysis)
    return page.substitute(
        csp=(
            "default-src 'none'; "
            f"script-src {_csp_hash(script)}; style-src {_csp_hash(style)}; "
            "img-src data:; base-uri 'none'; form-action 'none'"
        ),
        style=style,
        script=script,
        data=data,
        version=__version__,
        interval_charts="\n".join(_figure(c) for c in figures if c.name not in DISTRIBUTIONS),
        distribution_charts="\n".join(_figure(c) for c in figures if c.name in DISTRIBUTIONS),
    )


DISTRIBUTIONS = {"words_dist", "latency_dist", "ttft_dist"}
