"""Per-turn text features."""

from __future__ import annotations

import math

from runner.analysis.features import (
    asks_one_sentence,
    detect_languages,
    lexical_diversity,
    overlap,
    sentences,
    words,
)


def test_sentences_split_at_end_marks_before_a_space_and_at_line_breaks() -> None:
    assert len(sentences("It costs 3.5 dollars. Really? Yes!")) == 3
    assert len(sentences("First line\nsecond line")) == 2
    assert len(sentences("Fine. I lost.")) == 2
    assert sentences("...") == []


def test_words_keep_inner_apostrophes() -> None:
    assert words("Don't STOP, it's fine.") == ["don't", "stop", "it's", "fine"]


def test_overlap_is_the_share_of_trigrams_already_said() -> None:
    turn = words("the cat sat on the mat")
    assert overlap(turn, [turn]) == 1.0
    assert overlap(turn, [words("a dog sat on the mat")]) == 0.5  # 2 of 4 trigrams
    assert overlap(turn, [words("completely different words here")]) == 0.0
    assert overlap(words("I lost."), [words("I lost.")]) == 1.0  # short turns: whole turn
    assert math.isnan(overlap([], [turn]))


def test_one_sentence_requests_are_recognised() -> None:
    assert asks_one_sentence("Argue about any topic, one sentence per turn.")
    assert asks_one_sentence(None, "Answer in a single sentence.")
    assert not asks_one_sentence("Argue at length.", None)


def test_languages_are_detected_offline_and_short_text_is_left_alone() -> None:
    texts = [
        "The weather in the city is much better than people say.",
        "Le temps dans la ville est bien meilleur que ce que les gens disent.",
        "날씨가 도시에서는 사람들이 말하는 것보다 훨씬 좋습니다.",
        "Yes.",
    ]
    found = detect_languages(texts, [words(t) for t in texts])
    assert found == ["en", "fr", "ko", None]


def test_lexical_diversity_rewards_varied_words_and_needs_ten() -> None:
    varied = words("Every single morning brings fresh hope, new colours, strange birds and loud")
    dull = words("the the the cat the the the cat the the the cat the the")
    assert lexical_diversity(varied) > lexical_diversity(dull)
    assert math.isnan(lexical_diversity(words("too short to measure")))
