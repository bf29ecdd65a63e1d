"""End rules catch concessions, not quotations or restatements of the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.rules import Referee
from runner.scenario import EndRule, load_scenario

ROOT = Path(__file__).resolve().parents[2]
# The shipped i-lost rule, as users get it.
I_LOST = load_scenario(ROOT / "scenarios" / "i-lost.yaml").end[0]


@pytest.mark.parametrize(
    "text",
    [
        "Fine. I lost.",
        "OK, i LOST this one!",
        "You got me there... I   lost",
        "Alright.\nI lost, you win.",
        "I lost, why not play again?",
        "Fine, I lost, as I said I would.",
    ],
)
def test_concessions_fire(text: str) -> None:
    outcome = Referee([I_LOST], ["A", "B"]).judge("A", text, 3)
    assert outcome is not None
    assert (outcome.winner, outcome.loser, outcome.turn) == ("B", "A", 3)
    assert outcome.reason == "end_rule"


@pytest.mark.parametrize(
    "text",
    [
        "If you or I tell 'I lost' then I or you win",
        'Remember the rule: "I lost" means defeat.',
        "Whoever says I lost loses the game.",
        "I will never say I lost.",
        "I have not lost, and I lost nothing.",  # 'not' in the same sentence
        "Nobody here has lost anything, I lostalgia.",  # not a whole-word match
        "You said “I lost” earlier, not me.",
    ],
)
def test_quotations_and_restatements_do_not_fire(text: str) -> None:
    assert Referee([I_LOST], ["A", "B"]).judge("A", text, 1) is None


def test_speaker_wins_and_draw_and_three_agents() -> None:
    wins = EndRule(phrase="checkmate", outcome="speaker_wins")
    draw = EndRule(regex=r"\bwe (all )?agree\b", outcome="draw", name="consensus")
    referee = Referee([wins, draw], ["A", "B", "C"])
    won = referee.judge("B", "Checkmate.", 2)
    assert won is not None and (won.winner, won.loser) == ("B", None)
    tied = referee.judge("C", "Then we all agree.", 5)
    assert tied is not None and (tied.winner, tied.loser, tied.rule) == (None, None, "consensus")
    assert referee.judge("A", "No agreement.", 6) is None


def test_rules_apply_to_their_speakers_only() -> None:
    rule = EndRule(phrase="I give up", outcome="speaker_loses", speakers=["B"])
    referee = Referee([rule], ["A", "B"])
    assert referee.judge("A", "I give up.", 0) is None
    fired = referee.judge("B", "I give up.", 1)
    assert fired is not None and fired.loser == "B"


def test_quoted_text_counts_when_asked() -> None:
    rule = EndRule(phrase="I lost", outcome="speaker_loses", ignore_quoted=False)
    assert Referee([rule], ["A", "B"]).judge("A", "He wrote 'I lost'.", 0) is not None


def test_first_matching_rule_wins() -> None:
    first = EndRule(phrase="done", outcome="draw", name="first")
    second = EndRule(phrase="done", outcome="speaker_wins", name="second")
    outcome = Referee([first, second], ["A", "B"]).judge("A", "done", 0)
    assert outcome is not None and outcome.rule == "first"
