"""Metrics on hand-made transcripts whose answers are known."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from runner.analysis.frames import load_frames
from runner.analysis.metrics import METRIC_NAMES, METRICS, Analysis, analyse
from tests.runner.analysis.transcripts import Agent, Write

OPENING = "Let's argue about cities. One sentence per turn, please."
ARGUMENTS = [
    "Cities are better because everything is close by.",
    "Villages are calmer and the air is much cleaner.",
    "Museums and theatres only thrive where many people live.",
    "Gardens and quiet evenings matter more than theatres.",
    "Public transport makes a car unnecessary in town.",
    "Neighbours in small places actually know each other.",
]


def metric(analysis: Analysis, group: str, name: str) -> float | None:
    result = next(g for g in analysis.groups if g.group == group)
    return result.metrics[name].value


def run(folder: Path, by: str = "model", **options: object) -> Analysis:
    return analyse(load_frames([folder]), by, **options)  # type: ignore[arg-type]


def test_an_agent_that_always_concedes(write: Write, folder: Path) -> None:
    agents = [Agent("quitter", "quit:1b"), Agent("stayer", "stay:1b")]
    for i in range(4):
        write(
            agents=agents,
            turns=[("stayer", ARGUMENTS[i]), ("quitter", "Fine, you are right. I lost.")],
            winner="stayer",
            loser="quitter",
            reason="end_rule",
            rule="concession",
            decided_at=1,
            repeat_index=i,
        )
    a = run(folder)
    assert metric(a, "quit:1b", "concession_rate") == 1.0
    assert metric(a, "quit:1b", "loss_rate") == 1.0
    assert metric(a, "quit:1b", "turns_to_concede") == 1.0
    assert metric(a, "stay:1b", "win_rate") == 1.0
    assert metric(a, "stay:1b", "concession_rate") == 0.0
    assert metric(a, "stay:1b", "turns_to_concede") is None  # it never conceded
    assert metric(a, "stay:1b", "draw_rate") == 0.0


def test_a_loss_by_the_other_speakers_rule_is_not_a_concession(write: Write, folder: Path) -> None:
    # The winner's turn fired a speaker_wins rule: the loser lost without conceding.
    agents = [Agent("a", "ma"), Agent("b", "mb")]
    for i in range(2):
        write(
            agents=agents,
            turns=[("a", ARGUMENTS[0]), ("b", "I win this one.")],
            winner="b",
            loser="a",
            reason="end_rule",
            rule="victory",
            decided_at=1,
            repeat_index=i,
        )
    a = run(folder)
    assert metric(a, "ma", "loss_rate") == 1.0
    assert metric(a, "ma", "concession_rate") == 0.0


def test_an_agent_that_repeats_itself_word_for_word(write: Write, folder: Path) -> None:
    agents = [Agent("parrot-of-self", "loop:1b"), Agent("varied", "vary:1b")]
    same = "I think the answer is obviously forty two and nothing else."
    for i in range(3):
        turns = []
        for k in range(3):
            turns += [("parrot-of-self", same), ("varied", ARGUMENTS[k + i])]
        write(agents=agents, turns=turns, repeat_index=i)
    a = run(folder)
    assert metric(a, "loop:1b", "self_repetition") == 1.0
    assert metric(a, "vary:1b", "self_repetition") == 0.0


def test_an_agent_that_parrots_the_other(write: Write, folder: Path) -> None:
    agents = [Agent("speaker", "talk:1b"), Agent("parrot", "echo:1b")]
    for i in range(3):
        turns = []
        for k in range(3):
            line = ARGUMENTS[(k + i) % len(ARGUMENTS)]
            turns += [("speaker", line), ("parrot", line)]
        write(agents=agents, turns=turns, repeat_index=i)
    a = run(folder)
    assert metric(a, "echo:1b", "echo") == 1.0
    assert metric(a, "talk:1b", "echo") == 0.0


def test_an_agent_that_answers_in_another_language(write: Write, folder: Path) -> None:
    agents = [Agent("en", "english:1b", opening=OPENING), Agent("de", "german:1b")]
    german = [
        "Das stimmt überhaupt nicht, die Stadt ist viel zu laut und teuer.",
        "Auf dem Land sind die Menschen freundlicher und hilfsbereiter.",
    ]
    for i in range(3):
        write(
            agents=agents,
            turns=[
                ("en", OPENING),
                ("de", german[0]),
                ("en", ARGUMENTS[i]),
                ("de", german[1]),
            ],
            repeat_index=i,
        )
    a = run(folder)
    assert metric(a, "german:1b", "language_switch_rate") == 1.0
    assert metric(a, "english:1b", "language_switch_rate") == 0.0


def test_an_agent_that_writes_three_sentences_when_told_one(write: Write, folder: Path) -> None:
    told = "You argue. Answer in one sentence per turn."
    agents = [Agent("wordy", "long:1b", persona=told), Agent("terse", "short:1b", persona=told)]
    three = "Cities are loud. They are also dirty! Who would live there?"
    for i in range(3):
        write(
            agents=agents,
            turns=[("wordy", three), ("terse", ARGUMENTS[i]), ("wordy", three)],
            repeat_index=i,
        )
    a = run(folder)
    assert metric(a, "long:1b", "over_length_rate") == 1.0
    assert metric(a, "long:1b", "sentences_per_turn") == 3.0
    assert metric(a, "long:1b", "questions_per_turn") == 1.0
    assert metric(a, "short:1b", "over_length_rate") == 0.0
    assert metric(a, "short:1b", "sentences_per_turn") == 1.0


def test_over_length_needs_a_rule_or_a_limit(write: Write, folder: Path) -> None:
    agents = [Agent("a", "ma"), Agent("b", "mb")]
    for i in range(2):
        write(agents=agents, turns=[("a", "One. Two."), ("b", "Three.")], repeat_index=i)
    assert metric(run(folder), "ma", "over_length_rate") is None  # nobody asked for a limit
    limited = run(folder, max_sentences=1)
    assert metric(limited, "ma", "over_length_rate") == 1.0
    assert metric(limited, "mb", "over_length_rate") == 0.0


def test_off_character_turns_are_counted(write: Write, folder: Path) -> None:
    agents = [Agent("bot", "robot:1b"), Agent("human", "human:1b")]
    for i in range(2):
        write(
            agents=agents,
            turns=[
                ("bot", "As an AI language model, I cannot have opinions about cities."),
                ("human", ARGUMENTS[i]),
                ("bot", ARGUMENTS[i + 2]),
            ],
            repeat_index=i,
        )
    a = run(folder)
    assert metric(a, "robot:1b", "off_character_rate") == 0.5
    assert metric(a, "human:1b", "off_character_rate") == 0.0


def test_draws_errors_and_speed(write: Write, folder: Path) -> None:
    agents = [Agent("a", "ma"), Agent("b", "mb")]
    timing = {"ttft_ms": 50.0, "latency_ms": 500.0}
    write(agents=agents, turns=[("a", "one two three four"), ("b", "five six")], timing=timing)
    write(agents=agents, turns=[("a", "one two")], status="error", reason="error", timing=timing)
    a = run(folder)
    assert metric(a, "ma", "draw_rate") == 1.0  # the finished one ran out of turns
    assert metric(a, "ma", "error_rate") == 0.5
    assert metric(a, "ma", "ttft_ms") == 50.0
    # tokens are the words here: (4 + 2) tokens over two half-second replies
    assert metric(a, "ma", "tokens_per_s") == pytest.approx(6.0)
    assert metric(a, "ma", "words_per_turn") == 3.0


def test_groups_by_agent_and_by_persona(write: Write, folder: Path) -> None:
    agents = [
        Agent("left", "same:1b", persona="You are cheerful."),
        Agent("right", "same:1b", persona="You are grumpy."),
    ]
    for i in range(2):
        write(agents=agents, turns=[("left", ARGUMENTS[i]), ("right", ARGUMENTS[i + 1])])
    assert [g.group for g in run(folder, "model").groups] == ["same:1b"]
    assert [g.group for g in run(folder, "agent").groups] == ["left", "right"]
    personas = run(folder, "persona").groups
    assert [g.key for g in personas] == [
        {"model": "same:1b", "persona": "You are cheerful."},
        {"model": "same:1b", "persona": "You are grumpy."},
    ]
    assert all(g.conversations == 2 and g.turns == 2 for g in personas)


def test_same_input_gives_the_same_numbers_whatever_the_order(write: Write, folder: Path) -> None:
    agents = [Agent("a", "ma"), Agent("b", "mb")]
    rng = random.Random(3)
    paths = [
        write(
            agents=agents,
            turns=[("a", " ".join(rng.sample(ARGUMENTS, 2))), ("b", rng.choice(ARGUMENTS))],
            repeat_index=i,
        )
        for i in range(12)
    ]

    def numbers(files: list[Path]) -> str:
        result = analyse(load_frames(files), "model")
        return json.dumps([g.to_dict() for g in result.groups])

    first = numbers(paths)
    assert numbers(paths) == first
    assert numbers(list(reversed(paths))) == first
    words = json.loads(first)[0]["metrics"]["words_per_turn"]
    assert words["ci_low"] < words["value"] < words["ci_high"]  # a real interval


def test_every_metric_is_reported_with_its_definition(write: Write, folder: Path) -> None:
    write(agents=[Agent("a", "ma"), Agent("b", "mb")], turns=[("a", "Hello there.")])
    a = run(folder)
    assert set(a.groups[0].metrics) == set(METRIC_NAMES)
    assert all(m.definition.endswith(".") and len(m.definition) > 20 for m in METRICS)


def test_the_metrics_page_defines_every_metric_in_the_same_words() -> None:
    page = Path(__file__).resolve().parents[3] / "docs" / "report.md"
    text = page.read_text(encoding="utf-8")
    for m in METRICS:
        assert f"| `{m.name}` | {m.definition} |" in text, m.name
