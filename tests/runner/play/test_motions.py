"""Motions and sides: each conversation draws its motion, seeded, and records it; sides
are roles mapped to agents, named in phases and filled into personas and instructions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.backends.scripted import ScriptedBackend
from agents.errors import ConfigError
from runner.model.generate import RetryPolicy
from runner.model.pool import BackendPool
from runner.play.conversation import Conversation
from runner.play.motion import repeat_motion
from runner.run.plan import RunPlan
from runner.run.replay import plan_of, scenario_of
from runner.scenario.schema import load_scenario, scenario_from_data
from runner.settings import RunSettings
from runner.transcript import read_transcript

MOTIONS = ["tea beats coffee", "cats beat dogs", "rain beats sun"]

DEBATE: dict[str, Any] = {
    "name": "motions",
    "description": "Motion: {motion}.",
    "motions": MOTIONS,
    "agents": [
        {"name": "Ada", "model": "ma", "persona": "You argue the {side} of '{motion}'."},
        {"name": "Max", "model": "mb", "persona": "You are {side}."},
    ],
    "sides": {"proposition": "Max", "opposition": "Ada"},
    "phases": [
        {
            "name": "Openings",
            "speakers": ["proposition", "opposition"],
            "instruction": "Open for the {side} on {motion}; {{braces}} stay.",
        },
        {"name": "Closing", "speakers": ["opposition"], "script": {"opposition": "{motion}!"}},
    ],
    "seed": 8,
}


async def play_all(tmp_path: Path, data: dict[str, Any], repeat: int = 1) -> list[Any]:
    run = RunPlan([scenario_from_data(data, repeat=repeat)])
    settings = RunSettings(out_dir=tmp_path, retry=RetryPolicy(attempts=1, base=0.001))
    backend = ScriptedBackend(fallback=lambda request: "fine")
    await run.bind(BackendPool.fixed(backend, settings))
    results = []
    for plan in run:
        results.append(await Conversation(plan, settings, run_id="r").run())
    return [read_transcript(r.path) for r in results], backend  # type: ignore[return-value]


async def test_each_conversation_draws_its_motion_seeded_and_records_it(tmp_path: Path) -> None:
    transcripts, _ = await play_all(tmp_path, DEBATE, repeat=6)
    runs = [t.run for t in transcripts]
    drawn = [run.motion for run in runs]
    assert drawn == [repeat_motion(tuple(MOTIONS), 8, run.repeat_index) for run in runs]
    for run in runs:
        assert run.description == f"Motion: {run.motion}."
        assert run.agent("Ada").persona == f"You argue the opposition of '{run.motion}'."
        assert run.resolved["motions"] == MOTIONS  # the run line keeps every motion
    again, _ = await play_all(tmp_path / "again", DEBATE, repeat=6)
    assert [t.run.motion for t in again] == drawn  # the same seed, the same motions


async def test_repeats_debate_every_motion_once_before_any_twice(tmp_path: Path) -> None:
    transcripts, _ = await play_all(tmp_path, DEBATE, repeat=8)
    drawn = [t.run.motion for t in transcripts]
    assert sorted(drawn[:3]) == sorted(drawn[3:6]) == sorted(MOTIONS)
    assert len(set(drawn[6:])) == 2  # the third round, cut short, repeats none
    shorter, _ = await play_all(tmp_path / "short", DEBATE, repeat=4)
    assert [t.run.motion for t in shorter] == drawn[:4]  # more repeats, the same beginning


@pytest.mark.parametrize("count", [1, 2, 5, 7])
def test_the_round_robin_is_as_even_as_the_count_allows(count: int) -> None:
    motions = tuple(f"m{i}" for i in range(count))
    for seed in range(20):
        drawn = [repeat_motion(motions, seed, i) for i in range(3 * count + 1)]
        tally = sorted(drawn.count(m) for m in motions)
        assert tally[-1] - tally[0] <= 1 and sum(tally) == 3 * count + 1
    orders = {tuple(repeat_motion(motions, seed, i) for i in range(count)) for seed in range(20)}
    assert len(orders) > 1 or count == 1  # the seed shuffles the order
    rounds = [
        [repeat_motion(motions, seed, r * count + i) for i in range(count)]
        for seed in range(20)
        for r in (0, 1)
    ]
    assert count < 3 or any(a != b for a, b in zip(rounds[::2], rounds[1::2], strict=True))


async def test_sides_speak_in_phases_fill_placeholders_and_label_turns(tmp_path: Path) -> None:
    (transcript,), backend = await play_all(tmp_path, DEBATE)
    motion = transcript.run.motion
    assert transcript.run.sides == {"proposition": "Max", "opposition": "Ada"}
    assert [(t.speaker, t.role) for t in transcript.turns] == [
        ("Max", "proposition"), ("Ada", "opposition"), ("Ada", "opposition"),
    ]  # fmt: skip
    assert transcript.turns[2].content == f"{motion}!"
    max_system = backend.requests[0].messages[0]["content"]
    assert (
        max_system
        == f"You are proposition.\n\nOpen for the proposition on {motion}; {{braces}} stay."
    )
    assert (
        backend.requests[1]
        .messages[0]["content"]
        .endswith(f"Open for the opposition on {motion}; {{braces}} stay.")
    )
    assert (
        transcript.phases[0].instruction == f"Open for the {{side}} on {motion}; {{braces}} stay."
    )
    assert transcript.phases[0].speakers == ["Max", "Ada"]


def test_without_motions_or_sides_their_placeholders_are_undefined() -> None:
    data = {k: v for k, v in DEBATE.items() if k not in ("motions", "sides")}
    data["phases"] = [{"name": "Only", "speakers": ["Ada"]}]
    with pytest.raises(ConfigError) as info:
        scenario_from_data(data)
    assert sorted(p.split(": ", 2)[1:] for p in info.value.problems) == [
        ["agents[0].persona", "undefined placeholder {motion} (vars defined: none)"],
        ["agents[0].persona", "undefined placeholder {side} (vars defined: none)"],
        ["agents[1].persona", "undefined placeholder {side} (vars defined: none)"],
        ["description", "undefined placeholder {motion} (vars defined: none)"],
    ]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


SCENARIO = """\
name: t
motions: {file: %s}
agents:
  - {name: A, model: m}
  - {name: B, model: m}
"""


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("m.txt", "# motions\ntea beats coffee\n\n  cats beat dogs  \n"),
        ("m.yaml", "- tea beats coffee\n- cats beat dogs\n"),
        ("m.json", '["tea beats coffee", "cats beat dogs"]'),
    ],
)
def test_motions_are_read_from_a_file_beside_the_scenario(
    tmp_path: Path, name: str, text: str
) -> None:
    write(tmp_path, name, text)
    scenario = load_scenario(write(tmp_path, "s.yaml", SCENARIO % name))
    assert scenario.motions == ("tea beats coffee", "cats beat dogs")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "s.yaml:2:17: motions.file: no such file: {tmp}/m.txt"),
        (
            {"m.txt": "# only a comment\n\n"},
            "s.yaml:2:17: motions.file: {tmp}/m.txt holds no motions",
        ),
        ({"m.txt": ""}, "s.yaml:2:17: motions.file: {tmp}/m.txt holds no motions"),
    ],
    ids=["missing", "comments-only", "empty"],
)
def test_a_missing_or_empty_motions_file_is_one_located_line(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, "s.yaml", SCENARIO % "m.txt"))
    assert [p.replace(f"{tmp_path}/s.yaml", "s.yaml") for p in info.value.problems] == [
        expected.format(tmp=tmp_path)
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"sides": {"proposition": "Maxx", "opposition": "Ada"}},
            "sides.proposition: unknown agent 'Maxx' (did you mean 'Max'?); agents: Ada, Max",
        ),
        (
            {"sides": {"proposition": "Ada", "opposition": "Ada"}},
            "sides.opposition: one agent cannot argue both sides",
        ),
        ({"motions": []}, "motions: expected"),
        ({"sides": {"proposition": "Max"}}, "sides.opposition: required field is missing"),
    ],
    ids=["unknown", "both", "empty-list", "one-side"],
)
def test_bad_sides_and_motions_are_one_line_each(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        scenario_from_data({**DEBATE, **change})
    (problem,) = info.value.problems
    assert problem.startswith(f"<scenario>: {expected}"), problem


def test_a_scenario_without_motions_or_sides_hashes_as_before() -> None:
    plain = {k: v for k, v in DEBATE.items() if k not in ("motions", "sides", "phases")}
    plain["description"] = "x"
    plain["agents"] = [{"name": "Ada", "model": "ma"}, {"name": "Max", "model": "mb"}]
    content = scenario_from_data(plain).content()
    assert not {"motions", "sides", "phases", "moderator"} & set(content)


async def test_a_rerun_debates_the_recorded_motion(tmp_path: Path) -> None:
    transcripts, _ = await play_all(tmp_path, DEBATE, repeat=5)
    for t in transcripts:
        plan = plan_of(t.run, scenario_of(t.run, backend="ollama"))
        assert (plan.motion, plan.repeat_index) == (t.run.motion, t.run.repeat_index)
        assert plan.seed == t.run.seed
