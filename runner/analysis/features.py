"""Per-turn text features: length, sentences, questions, repetition, echo, language, tone.

Each function takes the turns table of :mod:`runner.analysis.frames` and returns columns
aligned with it (NaN where a feature does not apply, e.g. echo on a conversation's first
turn). Language detection (lingua), sentiment (VADER) and lexical diversity (MTLD, from
lexicalrichness) come from libraries that work offline with the data in their wheels.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

WORD = re.compile(r"\w+(?:['’]\w+)*")
# A sentence ends at . ! ? or … followed by white space (or the end), at a CJK full stop,
# or at a line break: close to what the end rules count as a sentence.
SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|(?<=[。！？])|\n+")
QUESTION = re.compile(r"[?？][\"'”’)\]]*\s*$")
ONE_SENTENCE = re.compile(
    r"\b(one|a single|1|single)[- ]sentence\b|\bone sentence (per|each|a) (turn|reply|answer)",
    re.IGNORECASE,
)
OFF_CHARACTER = re.compile(
    r"\b(?:as an ai|i(?:'m| am) (?:just |only )?an? (?:ai|artificial intelligence|language model"
    r"|chatbot|virtual assistant|computer program)|(?:an? |large )?language model|"
    r"as an assistant|i (?:cannot|can't|can not|won't|am unable to|am not able to) "
    r"(?:help|assist|comply|engage|participate|continue|fulfil)|"
    r"i'?m sorry,? but i (?:cannot|can't|won't))",
    re.IGNORECASE,
)
NGRAM = 3  # repetition and echo compare word trigrams (whole turns when shorter)
MIN_LANGUAGE_WORDS = 3  # shorter turns ("Fine.", "I lost.") say too little about a language
MIN_MTLD_WORDS = 10
# Languages lingua tells apart. A closed set keeps memory near 400 MB and detection fast;
# a reply in a language outside it is still told from the conversation's language.
LANGUAGES = "EN ES FR DE IT PT NL SV PL CS UK RU TR AR FA HE HI BN ZH JA KO VI ID TH EL".split()


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (letters and digits, inner apostrophes kept)."""
    return WORD.findall(text.lower())


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` that contain a word."""
    return [part for part in SENTENCE_BREAK.split(text) if WORD.search(part)]


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)} if n > 0 else set()


def overlap(tokens: Sequence[str], reference: Iterable[Sequence[str]]) -> float:
    """Share of the turn's word trigrams (its whole text, if shorter) found in ``reference``."""
    n = min(NGRAM, len(tokens))
    own = ngrams(tokens, n)
    if not own:
        return float("nan")
    seen: set[tuple[str, ...]] = set()
    for other in reference:
        seen |= ngrams(other, n)
    return len(own & seen) / len(own)


def asks_one_sentence(*texts: str | None) -> bool:
    return any(text and ONE_SENTENCE.search(text) for text in texts)


def _conversation_features(
    speakers: Sequence[str], tokens: Sequence[list[str]], generated: Sequence[bool]
) -> tuple[list[float], list[float]]:
    """Self-repetition and echo for one conversation's turns, in order."""
    repetition, echo = [], []
    earlier: dict[str, list[list[str]]] = {}
    for i, (speaker, toks) in enumerate(zip(speakers, tokens, strict=True)):
        own = earlier.setdefault(speaker, [])
        rep = ech = float("nan")
        if generated[i]:
            if own:
                rep = overlap(toks, own)
            if i > 0 and speakers[i - 1] != speaker:
                ech = overlap(toks, [tokens[i - 1]])
        repetition.append(rep)
        echo.append(ech)
        own.append(toks)
    return repetition, echo


def text_features(
    turns: pd.DataFrame,
    agents: pd.DataFrame,
    conversations: pd.DataFrame,
    max_sentences: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> pd.DataFrame:
    """Feature columns for every turn, indexed like ``turns``.

    ``over_length`` is set where a sentence limit applies: ``max_sentences`` when given,
    else one sentence for speakers whose persona, or whose conversation's opening lines or
    kickoff, ask for one sentence per turn.
    """
    contents = turns["content"].tolist()
    tokens = [words(text) for text in contents]
    parts = [sentences(text) for text in contents]
    generated = ~turns["scripted"].to_numpy(dtype=bool)
    out = pd.DataFrame(index=turns.index)
    out["words"] = [len(t) for t in tokens]
    out["sentences"] = [len(p) for p in parts]
    out["questions"] = [sum(bool(QUESTION.search(s)) for s in p) for p in parts]
    out["off_character"] = [bool(OFF_CHARACTER.search(text)) for text in contents]
    limits = _sentence_limits(turns, agents, conversations, max_sentences)
    out["over_length"] = np.where(np.isnan(limits), np.nan, out["sentences"] > limits)
    repetition: list[float] = []
    echo: list[float] = []
    cids = turns["conversation_id"].tolist()
    speakers = turns["speaker"].tolist()
    for start, stop in _runs(cids):
        rep, ech = _conversation_features(
            speakers[start:stop], tokens[start:stop], generated[start:stop]
        )
        repetition += rep
        echo += ech
    out["self_repetition"] = repetition
    out["echo"] = echo
    out["sentiment"] = sentiments(contents, progress)
    out["language"] = detect_languages(contents, tokens, progress)
    out["language_switch"] = _language_switches(turns, out["language"])
    for name in ("over_length", "self_repetition", "echo", "language_switch", "sentiment"):
        out.loc[~generated, name] = np.nan
    return out


def _runs(keys: Sequence[Any]) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal consecutive keys."""
    bounds, start = [], 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            bounds.append((start, i))
            start = i
    return bounds


def _sentence_limits(
    turns: pd.DataFrame,
    agents: pd.DataFrame,
    conversations: pd.DataFrame,
    max_sentences: int | None,
) -> np.ndarray:
    if max_sentences is not None:
        return np.full(len(turns), float(max_sentences))
    openings = agents.groupby("conversation_id")["opening"].agg(
        lambda values: " ".join(v for v in values if isinstance(v, str))
    )
    kickoffs = conversations.set_index("conversation_id")["kickoff"]
    shared = {
        cid: asks_one_sentence(openings.get(cid), _text(kickoffs.get(cid)))
        for cid in conversations["conversation_id"]
    }
    limits = [
        1.0 if shared.get(cid) or asks_one_sentence(_text(persona)) else np.nan
        for cid, persona in zip(turns["conversation_id"], turns["persona"], strict=True)
    ]
    return np.asarray(limits, dtype=float)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@functools.cache
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiments(
    texts: Sequence[str], progress: Callable[[str, int, int], None] | None = None
) -> list[float]:
    """VADER's compound score of each text, from -1 (negative) to 1 (positive)."""
    analyzer = _analyzer()
    scores = []
    for i, text in enumerate(texts):
        scores.append(analyzer.polarity_scores(text)["compound"] if text.strip() else np.nan)
        if progress is not None and i % 2000 == 0:
            progress("sentiment", i, len(texts))
    return scores


@functools.cache
def _detector() -> Any:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, code) for code in LANGUAGES]
    # A minimum distance makes lingua answer "unsure" (None) rather than guess on short text.
    return (
        LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
        .with_minimum_relative_distance(0.1)
        .build()
    )


def detect_languages(
    texts: Sequence[str],
    tokens: Sequence[Sequence[str]],
    progress: Callable[[str, int, int], None] | None = None,
    chunk: int = 2000,
) -> list[str | None]:
    """ISO 639-1 code of each text's language, or None when too short or unsure."""
    # Each distinct text once: models repeat themselves ("I lost.", the same opening).
    distinct = list(
        dict.fromkeys(
            t for t, toks in zip(texts, tokens, strict=True) if len(toks) >= MIN_LANGUAGE_WORDS
        )
    )
    codes: dict[str, str | None] = {}
    if distinct:
        detector = _detector()
    for start in range(0, len(distinct), chunk):
        batch = distinct[start : start + chunk]
        if progress is not None:
            progress("language", start, len(distinct))
        for text, language in zip(
            batch, detector.detect_languages_in_parallel_of(batch), strict=True
        ):
            codes[text] = language.iso_code_639_1.name.lower() if language is not None else None
    return [codes.get(text) for text in texts]


def _language_switches(turns: pd.DataFrame, languages: pd.Series) -> list[float]:
    """1.0 where a turn's language differs from its conversation's, 0.0 where it matches.

    A conversation's language is its scripted opening's, else the most common among its
    turns (the earliest such on a tie).
    """
    result = [float("nan")] * len(turns)
    cids = turns["conversation_id"].tolist()
    scripted = turns["scripted"].tolist()
    langs = [lang if isinstance(lang, str) else None for lang in languages]
    for start, stop in _runs(cids):
        reference = _reference_language(langs[start:stop], scripted[start:stop])
        if reference is None:
            continue
        for i in range(start, stop):
            if langs[i] is not None:
                result[i] = float(langs[i] != reference)
    return result


def _reference_language(langs: Sequence[str | None], scripted: Sequence[bool]) -> str | None:
    for lang, is_scripted in zip(langs, scripted, strict=True):
        if is_scripted and lang is not None:
            return lang
    known = [lang for lang in langs if lang is not None]
    if not known:
        return None
    counts = pd.Series(known).value_counts(sort=False)
    best = counts.max()
    return next(lang for lang in known if counts[lang] == best)


def lexical_diversity(tokens: Sequence[str]) -> float:
    """MTLD (McCarthy and Jarvis, 2010) of a text's words; NaN under ten words."""
    if len(tokens) < MIN_MTLD_WORDS:
        return float("nan")
    from lexicalrichness import LexicalRichness

    return float(LexicalRichness(list(tokens), preprocessor=None, tokenizer=None).mtld())
