"""End rules: does a turn end the conversation, and who won?

A rule should catch a concession, not a mention. So scripted lines are never checked,
quoted text is skipped (``ignore_quoted``), and a sentence that also matches one of the
rule's ``unless`` patterns (a restatement of the rule, a negation) does not count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from runner.scenario import EndRule
from runner.transcript import Outcome

# Straight double quotes, typographic quotes, guillemets, and single quotes that are not
# apostrophes (a quote opens after a non-word character and closes before one).
QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|‘[^’\n]*’|«[^»\n]*»|(?<!\w)'[^'\n]*'(?!\w)")
SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


class CompiledRule:
    def __init__(self, rule: EndRule) -> None:
        self.rule = rule
        if rule.phrase is not None:
            # Whole words, any run of whitespace between them, any case.
            words = r"\s+".join(re.escape(word) for word in rule.phrase.split())
            self.pattern = re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)
        else:
            self.pattern = re.compile(rule.regex or "", re.IGNORECASE)
        self.unless = [re.compile(p, re.IGNORECASE) for p in rule.unless]

    def match(self, speaker: str, text: str) -> str | None:
        """The sentence of ``text`` that fires this rule, or None."""
        if self.rule.speakers is not None and speaker not in self.rule.speakers:
            return None
        if self.rule.ignore_quoted:
            text = QUOTED.sub(" ", text)
        for sentence in SENTENCE.findall(text):
            if self.pattern.search(sentence) and not any(u.search(sentence) for u in self.unless):
                return sentence.strip()
        return None


class Referee:
    """Checks every generated turn against the scenario's end rules, in order."""

    def __init__(self, rules: Sequence[EndRule], agent_names: Sequence[str]) -> None:
        self.rules = [CompiledRule(rule) for rule in rules]
        self.agents = list(agent_names)

    def judge(self, speaker: str, text: str, turn: int) -> Outcome | None:
        for compiled in self.rules:
            sentence = compiled.match(speaker, text)
            if sentence is None:
                continue
            rule = compiled.rule
            others = [a for a in self.agents if a != speaker]
            # With two agents the other one is the opponent; with more there is no single one.
            opponent = others[0] if len(others) == 1 else None
            winner, loser = {
                "speaker_loses": (opponent, speaker),
                "speaker_wins": (speaker, opponent),
                "draw": (None, None),
            }[rule.outcome]
            return Outcome(
                winner=winner,
                loser=loser,
                reason="end_rule",
                rule=rule.label,
                turn=turn,
                matched=sentence,
            )
        return None
