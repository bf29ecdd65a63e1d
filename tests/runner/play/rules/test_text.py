"""Folding quotes, blanking quotations, sentences, and whose words a line is."""

from __future__ import annotations

from runner.play.rules.text import Voices, fold, sentences, unquoted


def test_fold_maps_one_character_to_one() -> None:
    text = "I won’t say “I lost”‚ ‘fine’… «non»！？，。"
    folded = fold(text)
    assert folded == "I won't say \"I lost\"' 'fine'. \"non\"!?,."
    assert len(folded) == len(text)


def test_unquoted_keeps_apostrophes_and_blanks_quotations() -> None:
    assert unquoted("You said 'I lost', didn't you?") == "You said         , didn't you?"
    assert unquoted('He wrote "I lost" twice.').split() == ["He", "wrote", "twice."]


def test_sentences_end_at_punctuation_and_line_breaks() -> None:
    assert sentences("Fine. I lost!\nAgain?  ") == ["Fine.", " I lost!", "Again?"]


def test_voices_skip_what_is_said_in_another_agent_s_name() -> None:
    voices = Voices(["llama", "qwen", "Dr. Who"])
    text = (
        "Wrong.\nqwen: I lost.\nStill qwen.\nLLAMA: Mine again.\n> **Dr. Who (smollm2:135m):** Hi"
    )
    assert voices.own("llama", text).split("\n") == ["Wrong.", "", "", " Mine again.", ""]
    assert voices.own("qwen", text).split("\n") == ["Wrong.", " I lost.", "Still qwen.", "", ""]
    assert voices.own("Dr. Who", text).split("\n")[-1] == " Hi"


def test_a_name_inside_a_line_or_without_a_colon_is_no_label() -> None:
    voices = Voices(["llama", "qwen"])
    text = "I told qwen: I lost.\nqwen said I lost.\nqwenx: hello"
    assert voices.own("llama", text) == text
