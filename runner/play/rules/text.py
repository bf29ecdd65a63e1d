"""A turn's text as a referee reads it: one spelling of quotes, own lines only, sentences.

Every function here keeps offsets or works line by line, so the sentence a rule reports
is the speaker's own text, only with its quotes and punctuation folded to ASCII.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Typographic apostrophes and quotes, guillemets, fullwidth punctuation (which small models
# mix into English text) and the ellipsis, folded one character for one: a rule written
# with ASCII quotes then matches a curly "won’t", and a rule written with curly quotes
# matches plain text.
FOLDS = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′ʼʹ´`＇‹›", "'"),
        **dict.fromkeys("“”„‟″〝〞«»＂", '"'),
        "…": ".",
        "。": ".",
        "．": ".",
        "，": ",",
        "、": ",",
        "！": "!",
        "？": "?",
        "：": ":",
        "；": ";",
    }
)

# Double quotes, and single quotes that are not apostrophes (a quote opens after a
# non-word character and closes before one), within one line.
QUOTED = re.compile(r"\"[^\"\n]*\"|(?<!\w)'[^'\n]*'(?!\w)")
SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def fold(text: str) -> str:
    """``text`` with typographic quotes and punctuation replaced by their ASCII forms."""
    return text.translate(FOLDS)


def unquoted(text: str) -> str:
    """``text`` with every quotation blanked out (the quotation marks too)."""
    return QUOTED.sub(lambda m: " " * len(m.group(0)), text)


def sentences(text: str) -> list[str]:
    """Sentences, each with its closing punctuation; a line break also ends a sentence."""
    return [s for s in SENTENCE.findall(text) if s.strip()]


class Voices:
    """Which lines of a turn are the speaker's own words.

    Small models often write the whole dialogue: ``llama: That's wrong.`` and then
    ``qwen: I lost.``, all in llama's turn. A line that starts with another agent's name
    and a colon begins words put in that agent's mouth; they are not the speaker's, up to
    a line that starts with the speaker's own name and a colon (or the end of the turn).
    Names match in any case, with markdown around them (``**qwen**:``) or a model after
    them (``qwen (qwen:0.5b):``).
    """

    def __init__(self, names: Sequence[str]) -> None:
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        self.label = (
            re.compile(
                rf"^[ \t>*_#\[]*(?P<name>{alternatives})(?:\s*\([^)\n]*\))?[*_\]]*[ \t]*:[*_]*",
                re.IGNORECASE,
            )
            if names
            else None
        )

    def own(self, speaker: str, text: str) -> str:
        """The lines of ``text`` that ``speaker`` says in its own name, labels removed."""
        if self.label is None:
            return text
        kept: list[str] = []
        own_voice = True
        for line in text.split("\n"):
            label = self.label.match(line)
            if label is not None:
                own_voice = label.group("name").casefold() == speaker.casefold()
                line = line[label.end() :]
            # A skipped line stays as an empty one, so it still ends the sentence before it.
            kept.append(line if own_voice else "")
        return "\n".join(kept)
