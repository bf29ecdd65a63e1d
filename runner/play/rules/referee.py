"""The referee: checks every generated turn against a scenario's end rules, in order."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from runner.play.rules.stalemate import Repetition, Said
from runner.play.rules.statement import Statement
from runner.play.rules.text import Voices, fold, sentences, unquoted
from runner.scenario.schema import EndRule
from runner.transcript import Outcome

MATCHED_CHARS = 200  # of a repeated turn, in the outcome's ``matched``


@dataclass(frozen=True, slots=True)
class Line:
    speaker: str
    content: str


def _oneline(text: str) -> str:
    return " ".join(text.split())


class TextRule:
    """A phrase or regex rule: the first sentence of a turn that states it."""

    def __init__(self, rule: EndRule, voices: Voices) -> None:
        self.rule = rule
        self.voices = voices
        if rule.phrase is not None:
            # Whole words, any run of whitespace between them, any case; a hyphen after
            # the last word makes another word ("I lost-ish" is not "I lost").
            words = r"\s+".join(re.escape(word) for word in fold(rule.phrase).split())
            self.pattern = re.compile(rf"(?<!\w){words}(?!\w|-\w)", re.IGNORECASE)
        else:
            self.pattern = re.compile(fold(rule.regex or ""), re.IGNORECASE)
        self.unless = [re.compile(fold(p), re.IGNORECASE) for p in rule.unless]
        self.statement = Statement(rule.objects) if rule.reads_statements else None

    def match(self, speaker: str, text: str, history: Sequence[Said]) -> str | None:
        """The sentence of ``text`` that fires this rule, or None."""
        text = fold(text)
        if self.rule.ignore_impersonated:
            text = self.voices.own(speaker, text)
        if self.rule.ignore_quoted:
            text = unquoted(text)
        for sentence in sentences(text):
            if any(u.search(sentence) for u in self.unless):
                continue
            for found in self.pattern.finditer(sentence):
                if found.end() == found.start():
                    continue  # an empty match says nothing
                if self.statement is None or (
                    self.statement.why_not(sentence, found.start(), found.end()) is None
                ):
                    return _oneline(sentence)
        return None


class StalemateRule:
    """Fires on the turn that completes a repetition (see :mod:`runner.play.rules.stalemate`)."""

    def __init__(self, rule: EndRule, agents: int) -> None:
        assert rule.stalemate is not None
        self.rule = rule
        # Cycles of up to two turns per agent: everyone alternating between two answers.
        self.repetition = Repetition(
            rule.stalemate.repeats, rule.stalemate.similarity, max(2, 2 * agents)
        )

    def match(self, speaker: str, text: str, history: Sequence[Said]) -> str | None:
        repeated = self.repetition.find(history or [Line(speaker, text)])
        if repeated is None:
            return None
        line = _oneline(repeated)
        return line if len(line) <= MATCHED_CHARS else line[: MATCHED_CHARS - 1] + "…"


class Referee:
    """Checks every generated turn against the scenario's end rules, in order."""

    def __init__(self, rules: Sequence[EndRule], agent_names: Sequence[str]) -> None:
        self.agents = list(agent_names)
        voices = Voices(self.agents)
        self.rules: list[TextRule | StalemateRule] = [
            StalemateRule(rule, len(self.agents))
            if rule.stalemate is not None
            else TextRule(rule, voices)
            for rule in rules
        ]

    def judge(
        self, speaker: str, text: str, turn: int, history: Sequence[Said] = ()
    ) -> Outcome | None:
        """The outcome if ``text``, said by ``speaker`` as turn ``turn``, ends the game.

        ``history``: the conversation's turns so far, this one included, scripted ones
        too; stalemate rules need it (without it they see only this turn).
        """
        for compiled in self.rules:
            rule = compiled.rule
            if rule.speakers is not None and speaker not in rule.speakers:
                continue
            matched = compiled.match(speaker, text, history)
            if matched is None:
                continue
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
                matched=matched,
            )
        return None
