"""Why a sentence holding a phrase is no statement of it: the reason, not just the verdict."""

from __future__ import annotations

import re

import pytest

from runner.play.rules.statement import Reason, Statement


def why_not(
    sentence: str, phrase: str = "I lost", statement: Statement | None = None
) -> Reason | None:
    found = re.search(phrase, sentence, re.IGNORECASE)
    assert found is not None
    return (statement or Statement()).why_not(sentence, found.start(), found.end())


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("I lost?", "question"),
        ("You think I lost?", "question"),  # a question before it is a hedge too
        ("I lost, right?", "question"),
        ("So, did you think I lost, or not?", "question"),
        ("I lost, why not play again?", None),
        ("I lost, didn't I?", None),  # a rhetorical tag concedes
        ("I won't admit I lost.", "hedged"),
        ("If I lost, fine.", "hedged"),
        ("They say I lost.", "hedged"),
        ("You clearly think I lost.", "hedged"),
        ("I think I lost.", None),
        ("I don't know how, but I lost.", None),  # the cue is in another clause
        ("I won't, whatever you say, admit I lost.", "hedged"),  # commas do not end it
        ("I can't answer that, I lost.", None),  # unless the phrase opens the next clause
        ("I can't believe I lost.", None),
        ("No, I lost.", None),
        ("No way I lost.", "hedged"),
        ("I lost my keys.", "object"),
        ("I lost 3 times.", "object"),
        ("I lost the argument.", None),
        ("I lost to you.", None),
        ("I lost if you say so.", "object"),  # a condition after it is no follower
    ],
)
def test_reasons(sentence: str, reason: Reason | None) -> None:
    assert why_not(sentence) == reason


def test_objects_replace_the_defaults_and_any_skips_the_check() -> None:
    bets = Statement(["the bet"])
    assert why_not("I lost the bet.", statement=bets) is None
    assert why_not("I lost the argument.", statement=bets) == "object"
    assert why_not("I lost my keys.", statement=Statement("any")) is None
    assert why_not("I lost this one.", statement=Statement([])) == "object"


def test_the_question_mark_belongs_to_the_last_clause_only() -> None:
    assert why_not("I lost; what next?") is None
    assert why_not("Well - I lost - what next?") is None
    assert why_not("What next, now that I lost?") == "question"
