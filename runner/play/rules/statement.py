"""Does a sentence state a rule's phrase, or only mention it?

A referee counts "Fine. I lost." and "I lost, why not play again?", but not a question
("I lost? No way!", "You want me to admit I lost?"), a hedged mention: negated, conditional,
wished-for or put in someone else's mouth ("I won't admit I lost.", "If I lost, ...",
"Whoever says I lost loses."), nor the phrase with an object that makes it a different
statement ("I lost my keys"). The cues are English words, and all of them are read on
text already folded to ASCII quotes (see :mod:`runner.play.rules.text`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

Reason = Literal["question", "hedged", "object"]

# What follows the phrase and still lets it count when the phrase is a verb that can take
# one: the contest itself. Anything else that is not in FOLLOWERS is an object.
GAME_OBJECTS = (
    "this one",
    "that one",
    "this round",
    "the round",
    "this game",
    "the game",
    "this argument",
    "the argument",
    "this debate",
    "the debate",
    "this match",
    "the match",
    "this battle",
    "this time",
    "fair and square",
)

# Words that can follow a stated phrase without being its object: conjunctions,
# prepositions, adverbs, and the usual tags of a concession ("I lost, you win").
FOLLOWERS = re.compile(
    r"\s*(?:and|but|or|so|because|cause|since|as|though|although|while|yet|then|now"
    r"|anyway|anyways|again|too|also|already|after|fair|here|there|today|big|hard|once"
    r"|twice|indeed|to|against|in|at|on|by|with|from|for|about|that|which|when"
    r"|completely|totally|fairly|badly|clearly|honestly|really|definitely|certainly"
    r"|miserably|terribly|utterly|entirely|obviously|officially|finally|truly|squarely"
    r"|you\s+win|you\s+won|you're\s+right|ok|okay|alright|fine|yes|yeah|lol|haha|hah)\b",
    re.IGNORECASE,
)

# Where a new clause starts, out of reach of the cues before it: "I never lose, but I
# lost." A comma is one only when the phrase opens the clause after it ("I can't argue
# with that, I lost."), or "I won't, whatever you say, admit I lost" would count.
BOUNDARY = re.compile(
    r"[;:]|\s[-–—]+\s|[–—]|\b(?:but|yet|so|though|although|however|anyway)\b", re.IGNORECASE
)
OPENS_CLAUSE = re.compile(
    r",(?:\s*(?:ok|okay|fine|well|alright|yes|yeah|then|honestly|clearly|sadly|alas)\s*,?)*\s*$",
    re.IGNORECASE,
)
# Separators of the clauses a question mark can belong to.
CLAUSE = re.compile(r"[,;:]|\s[-–—]+\s|[–—]")

# Set phrases whose negation affirms what follows: "I can't believe I lost" concedes.
AFFIRMING = re.compile(
    r"\b(?:can't|cannot|could\s+not|couldn't)\s+(?:believe|deny)\b"
    r"|\bno\s+(?:doubt|denying|question)\b|\bnot\s+(?:going\s+to|gonna)\s+lie\b"
    r"|\bwon't\s+lie\b"
    r"|\bI\s+(?:must|have\s+to|had\s+to|need\s+to|got\s+to)\s+(?:admit|say|confess)\b",
    re.IGNORECASE,
)

_NEGATION = (
    r"not|never|no(?!\s*[,.!?;:])|nobody|no\s+one|none|neither|nor|cannot|\w+n't"
    r"|dont|wont|cant|didnt|doesnt|isnt|wasnt|havent|wouldnt|couldnt|shouldnt"
    r"|refuses?|refused|deny|denies|denied|without|hardly"
)
_CONDITION = (
    r"if|unless|whether|when|whenever|whoever|whatever|until|supposing|imagine|pretend"
    r"|in\s+case|would|could|might|should|maybe|perhaps|possibly"
)
_WISH = r"wants?|wanted|wish|wishes|hopes?|expects?|try|tries|trying|going\s+to|gonna"
_REPORT = (
    r"says?|said|saying|tells?|told|telling|types?|typed|typing|writes?|wrote|writing"
    r"|claims?|claimed|claiming|repeats?|shouts?"
)
# Someone else's view: "you think I lost", "they say I lost" (but "I think I lost" concedes).
_OTHERS_VIEW = (
    r"(?:you|he|she|they|nobody|everyone|everybody|someone|somebody|anyone|anybody|people"
    r"|who)(?:\s+\w+){0,2}?\s+(?:think|thinks|thought|believe|believes|believed|feel|feels"
    r"|reckon|reckons|assume|assumes|assumed|suggest|suggests|insist|insists|imply|implies"
    r"|mean|means|meant|guess)"
)
HEDGE = re.compile(
    rf"\b(?:{_NEGATION}|{_CONDITION}|{_WISH}|{_REPORT}|{_OTHERS_VIEW})\b", re.IGNORECASE
)

# A clause opening with one of these and ending in "?" asks; it does not state.
ASKING = re.compile(
    r"\s*(?:(?:so|and|but|well|then|now|oh|ok|okay)\s+)*"
    r"(?:do|does|did|is|are|am|was|were|can|could|would|will|should|shall"
    r"|have|has|had|may|might|must|who|whom|whose|what|why|how|where|when|which|\w+n't)\b",
    re.IGNORECASE,
)
# A question tag after a stated phrase that still asks for confirmation: "I lost, right?"
TAG = re.compile(
    r"\s*(?:right|then|really|huh|eh|no|or\s+not|or\s+what|is\s+that\s+it|is\s+it|correct"
    r"|you\s+think|do\s+you\s+think)\s*[?!.]*\s*$",
    re.IGNORECASE,
)


class Statement:
    """Tells a statement of a phrase from a question, a hedged mention or another statement.

    ``objects``: what may follow the phrase as its object and still count (default
    :data:`GAME_OBJECTS`); ``"any"`` skips the object check.
    """

    def __init__(self, objects: Sequence[str] | Literal["any"] | None = None) -> None:
        if objects == "any":
            self.objects: re.Pattern[str] | None = None
        else:
            chosen = GAME_OBJECTS if objects is None else objects
            words = [r"\s+".join(re.escape(w) for w in o.split()) for o in chosen if o.split()]
            alternatives = "|".join(sorted(words, key=len, reverse=True)) or r"(?!)"
            self.objects = re.compile(rf"\s*(?:{alternatives})(?!\w)", re.IGNORECASE)

    def why_not(self, sentence: str, start: int, end: int) -> Reason | None:
        """Why ``sentence[start:end]`` is no statement of the phrase, or None if it is one."""
        if _asks(sentence, start, end):
            return "question"
        if _hedged(sentence, start):
            return "hedged"
        if self.objects is not None and self._has_object(sentence[end:]):
            return "object"
        return None

    def _has_object(self, rest: str) -> bool:
        word = re.match(r"\s*(\w)", rest)
        if word is None:
            return False  # end of sentence, punctuation, an emoji
        if word.group(1).isdigit():
            return True  # "I lost 5 points"
        return not (self.objects and self.objects.match(rest)) and not FOLLOWERS.match(rest)


def _asks(sentence: str, start: int, end: int) -> bool:
    """Whether the clause holding the phrase is a question.

    A question mark belongs to the last clause of its sentence, so "I lost, why not play
    again?" states "I lost" and asks the rest; a clause that opens like a question
    ("do you think I lost, or not?") or ends in a tag ("I lost, right?") asks.
    """
    closing = re.search(r"[.!?]*\s*$", sentence)
    if closing is None or "?" not in closing.group(0):
        return False
    after = CLAUSE.search(sentence, end)
    if after is None:
        return True  # the phrase is in the last clause: "You think I lost?"
    if TAG.match(sentence[after.end() :]):
        return True
    before = [m.end() for m in CLAUSE.finditer(sentence, 0, start)]
    return ASKING.match(sentence, before[-1] if before else 0) is not None


def _hedged(sentence: str, start: int) -> bool:
    """Whether a negation, condition, wish or report in the phrase's clause governs it."""
    boundaries = [m.end() for m in BOUNDARY.finditer(sentence, 0, start)]
    comma = sentence.rfind(",", 0, start)
    if comma >= 0 and OPENS_CLAUSE.match(sentence, comma, start):
        boundaries.append(comma + 1)
    scope = sentence[max(boundaries, default=0) : start]
    return HEDGE.search(AFFIRMING.sub(" ", scope)) is not None
