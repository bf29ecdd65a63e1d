"""End rules read like a referee: concessions count; quotations, questions, hedged mentions,
other objects and lines written in someone else's name do not; stalemates end in a draw."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.backends.scripted import ScriptedBackend
from agents.errors import ConfigError
from runner.model.generate import RetryPolicy
from runner.model.pool import BackendPool
from runner.play.rules import Referee
from runner.run.orchestrator import run_scenarios
from runner.scenario.schema import EndRule, load_scenario, scenario_from_data
from runner.settings import RunSettings
from runner.transcript import read_transcript

ROOT = Path(__file__).resolve().parents[3]
# The shipped rules, as users get them.
I_LOST = load_scenario(ROOT / "scenarios" / "i-lost.yaml").end[0]
AGREEMENT = load_scenario(ROOT / "scenarios" / "self-debate.yaml").end[0]
AGENTS = ["llama", "qwen"]


def concedes(text: str, rule: EndRule = I_LOST, speaker: str = "llama") -> bool:
    return Referee([rule], AGENTS).judge(speaker, text, 1) is not None


CONCESSIONS = [
    "Fine. I lost.",
    "OK, i LOST this one!",
    "You got me there... I   lost",
    "Alright.\nI lost, you win.",
    "I lost, why not play again?",
    "Fine, I lost, as I said I would.",
    "I lost.",
    "Okay, okay, I lost!",
    "I lost the argument.",
    "Alright, I lost the game.",
    "I lost this round, well played.",
    "I lost fair and square.",
    "I lost to you, congratulations!",
    "I lost again.",
    "I lost completely.",
    "You're right, I lost.",
    "No, you're right: I lost.",
    "Yes, I lost.",
    "You win. I lost.",
    "I lost; your argument was better.",
    "I lost - your point stands.",
    "So I lost, what now?",
    "Well, I lost. Shall we play again?",
    "I think I lost.",
    "I guess I lost this one.",
    "I can't believe I lost.",
    "I must admit I lost.",
    "I have to say I lost this one.",
    "I never thought I'd say it, but I lost.",
    "I can't argue with that, I lost.",  # the phrase opens its own clause
    "When you put it that way, well, I lost.",
    "Honestly, I lost 😅",
    "I lost… you win.",  # an ellipsis character ends the sentence like "..."
    "好吧，I lost！",  # fullwidth punctuation
    "“Good point.” I lost.",  # a quotation before the phrase, not of it
    "qwen: That is a fair point.\nllama: I lost.",  # the speaker's own label
    "**llama:** I lost.",
]


@pytest.mark.parametrize("text", CONCESSIONS)
def test_concessions_fire(text: str) -> None:
    outcome = Referee([I_LOST], AGENTS).judge("llama", text, 3)
    assert outcome is not None
    assert (outcome.winner, outcome.loser, outcome.turn) == ("qwen", "llama", 3)
    assert outcome.reason == "end_rule" and outcome.rule == "concession"
    assert outcome.matched is not None and "lost" in outcome.matched.lower()


MENTIONS = {
    # questions
    "I lost? No way!",
    "You think I lost? Never.",
    "You want me to admit I lost?",
    "Did I just say I lost?",
    "Do you really think I lost, after all that?",
    "I lost, right?",
    "Who says I lost?",
    "I lost?!",
    # negated
    "I won’t admit I lost.",  # a typographic apostrophe
    "I will never say I lost.",
    "I did not say I lost.",
    "I don't think I lost.",
    "I refuse to admit I lost.",
    "There is no way I lost.",
    "Nobody can make me say I lost.",
    # conditional, hypothetical, wished-for
    "If I lost, you would have won.",
    "If you or I tell 'I lost' then I or you win",
    "Whoever says I lost loses the game.",
    "Even if I lost, I would not admit it.",
    "When I lost last time, I learned a lot.",
    "Maybe I lost, maybe not.",
    "That would mean I lost.",
    "Unless I lost, the game goes on.",
    "You wish I lost.",
    # reported: someone else's words or view
    "You said I lost, but I did not.",
    "He thinks I lost.",
    # quotations
    'Remember the rule: "I lost" means defeat.',
    "You said “I lost” earlier, not me.",
    "The words ‘I lost’ will never leave my mouth.",
    # another object: a different statement
    "I lost my keys yesterday.",
    "I lost track of the topic.",
    "I lost nothing.",
    "I have not lost, and I lost nothing.",
    "I lost 5 points there, but I am still ahead.",
    "I lost interest in this topic.",
    # not the whole phrase
    "Nobody here has lost anything, I lostalgia.",
    "I almost lost.",
    # written in the other agent's name (by llama)
    "llama: That's wrong.\nqwen: I lost.",
    "**qwen:** I lost, you win.",
    "Qwen (qwen:0.5b): I lost.\nThat is what you will say soon.",
}


@pytest.mark.parametrize("text", sorted(MENTIONS))
def test_mentions_do_not_fire(text: str) -> None:
    assert Referee([I_LOST], AGENTS).judge("llama", text, 1) is None


# ---------------------------------------------------------------- typography


@pytest.mark.parametrize(
    "text", ["You’re right.", "You're right, planning wins.", "OK, you are right about that."]
)
def test_the_self_debate_rule_matches_any_apostrophe(text: str) -> None:
    assert Referee([AGREEMENT], ["Planner", "Improviser"]).judge("Planner", text, 1)


@pytest.mark.parametrize("text", ["You’re right?", "If you’re right, I am wrong."])
def test_the_self_debate_rule_reads_statements_only(text: str) -> None:
    assert Referee([AGREEMENT], ["Planner", "Improviser"]).judge("Planner", text, 1) is None


def test_typographic_quotes_in_rules_match_ascii_text_and_back() -> None:
    curly = EndRule(phrase="that’s checkmate", outcome="speaker_wins")
    ascii_rule = EndRule(phrase="that's checkmate", outcome="speaker_wins")
    assert concedes("Well, that's checkmate.", curly)
    assert concedes("Well, that’s checkmate.", ascii_rule)
    assert concedes("Well, that‘s checkmate.", ascii_rule)
    assert not concedes("Well, thats checkmate.", ascii_rule)


def test_unless_patterns_are_folded_too() -> None:
    rule = EndRule(regex=r"\bI give up\b", outcome="speaker_loses", unless=["won’t"])
    assert not concedes("I won't... I give up.".replace("...", ""), rule)
    assert not concedes("I won’t I give up.", rule)
    assert concedes("I give up.", rule)


def test_quoted_text_in_typographic_quotes_is_skipped() -> None:
    assert not concedes("He wrote “I lost” and «I lost» and ‘I lost’ on the board.")


# ---------------------------------------------------------------- impersonation


def test_the_writer_does_not_lose_by_ventriloquism_either_side() -> None:
    text = "llama: That's wrong.\nqwen: I lost."
    referee = Referee([I_LOST], AGENTS)
    assert referee.judge("llama", text, 1) is None  # llama wrote qwen's line
    # Written by qwen, the same text is qwen's own concession.
    outcome = referee.judge("qwen", text, 2)
    assert outcome is not None and outcome.loser == "qwen" and outcome.matched == "I lost."


def test_own_words_resume_after_an_own_label() -> None:
    text = "qwen: I lost.\nllama: No, I lost, you win."
    outcome = Referee([I_LOST], AGENTS).judge("llama", text, 1)
    assert outcome is not None and outcome.matched == "No, I lost, you win."


def test_impersonated_lines_count_when_asked() -> None:
    rule = EndRule(phrase="I lost", outcome="speaker_loses", ignore_impersonated=False)
    outcome = Referee([rule], AGENTS).judge("llama", "llama: Wrong.\nqwen: I lost.", 1)
    assert outcome is not None and outcome.loser == "llama"


def test_labels_of_other_agents_only_not_any_colon() -> None:
    # "Result:" is not an agent; the line is the speaker's own.
    assert concedes("Result: I lost.")
    three = Referee([I_LOST], ["A", "B", "C"])
    assert three.judge("A", "B: I lost.\nC: I lost too.", 1) is None
    assert three.judge("A", "B: I lost.\nA: I lost too.", 1) is not None


# ---------------------------------------------------------------- options


def test_regex_rules_match_mentions_unless_asked_for_statements() -> None:
    loose = EndRule(regex=r"\bI lost\b", outcome="speaker_loses")
    strict = EndRule(regex=r"\bI lost\b", outcome="speaker_loses", statements_only=True)
    for text in ("You think I lost?", "I lost my keys.", "If I lost, fine."):
        assert concedes(text, loose)
        assert not concedes(text, strict)
    assert concedes("Fine, I lost.", strict)


def test_phrase_rules_can_match_mentions_too() -> None:
    loose = EndRule(phrase="I lost", outcome="speaker_loses", statements_only=False)
    assert concedes("I lost? No way!", loose)


def test_objects_are_configurable() -> None:
    debate = EndRule(phrase="I concede", outcome="speaker_loses", objects=["the debate"])
    assert concedes("I concede the debate.", debate)
    assert concedes("I concede.", debate)
    assert not concedes("I concede the point, but not the debate.", debate)
    assert not concedes("I concede this one.", debate)  # the default objects are replaced
    anything = EndRule(phrase="I lost", outcome="speaker_loses", objects="any")
    assert concedes("I lost my keys.", anything)


def test_unless_still_vetoes_a_sentence() -> None:
    rule = EndRule(phrase="I lost", outcome="speaker_loses", unless=[r"\bjoking\b"])
    assert not concedes("I lost, just joking.", rule)
    assert concedes("I lost, no joke.", rule)


def test_quoted_text_counts_when_asked() -> None:
    rule = EndRule(phrase="I lost", outcome="speaker_loses", ignore_quoted=False)
    assert concedes("'I lost.' There, I said it.", rule)
    assert not concedes("'I lost.' There, I said it.")
    # Quoted or not, a report of someone writing it is no concession.
    assert not concedes("He wrote 'I lost'.", rule)


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


def test_first_matching_rule_wins() -> None:
    first = EndRule(phrase="done", outcome="draw", name="first")
    second = EndRule(phrase="done", outcome="speaker_wins", name="second")
    outcome = Referee([first, second], ["A", "B"]).judge("A", "done", 0)
    assert outcome is not None and outcome.rule == "first"


# ---------------------------------------------------------------- stalemate


@dataclass(frozen=True)
class Line:
    speaker: str
    content: str


STALEMATE = EndRule(stalemate={"repeats": 3, "similarity": 0.9}, outcome="draw")


def play(lines: list[tuple[str, str]], rules: list[EndRule] | None = None) -> tuple[int, str]:
    """Judge each line in turn as a conversation would: (index of the deciding turn, rule)."""
    referee = Referee(rules or [STALEMATE], sorted({s for s, _ in lines}))
    said: list[Line] = []
    for index, (speaker, text) in enumerate(lines):
        said.append(Line(speaker, text))
        outcome = referee.judge(speaker, text, index, said)
        if outcome is not None:
            assert (outcome.winner, outcome.loser) == (None, None) or rules
            return index, outcome.rule or ""
    return -1, ""


def test_a_speaker_repeating_itself_three_times_is_a_stalemate() -> None:
    loop = "I think that cats are better than dogs because they are independent."
    lines = [("A", "Dogs are loyal."), ("B", loop), ("A", "Dogs guard the house."), ("B", loop)]
    assert play(lines) == (-1, "")  # twice is not yet a loop
    index, rule = play([*lines, ("A", "Dogs are fun."), ("B", loop.upper())])
    assert (index, rule) == (5, "stalemate")


def test_nearly_the_same_turn_counts_and_a_different_one_does_not() -> None:
    base = "I am sorry, but I cannot continue this argument with you today."
    near = "I am sorry, but I cannot continue this argument with you now."  # 11 of 12 words
    far = "I am sorry, but I will not continue arguing about this."
    a = [("A", "x1"), ("A", "x2"), ("A", "x3")]  # A varies; only B is judged for repeats
    interleave = lambda bs: [t for pair in zip(a, bs, strict=True) for t in pair]  # noqa: E731
    assert play(interleave([("B", base), ("B", near), ("B", base)]))[0] == 5
    assert play(interleave([("B", base), ("B", far), ("B", base)]))[0] == -1


def test_a_conversation_cycling_between_two_answers_is_a_stalemate() -> None:
    # Both alternate between two lines: neither repeats its latest turn, but the last
    # twelve turns are one block of four said three times.
    block = [("A", "Cats win."), ("B", "No, dogs."), ("A", "Dogs? Never."), ("B", "Birds!")]
    lines = [("B", "Hello."), *block, *block, *block]
    assert play(lines[:-1])[0] == -1
    assert play(lines) == (12, "stalemate")


def test_an_echo_is_a_cycle_of_one_turn() -> None:
    lines = [("A", "We agree."), ("B", "We agree."), ("A", "We agree.")]
    assert play(lines)[0] == 2


def test_repeats_and_similarity_are_the_rule_s() -> None:
    twice = EndRule(stalemate={"repeats": 2}, outcome="draw", name="twice")
    assert play([("A", "No."), ("B", "Yes."), ("A", "No.")], [twice]) == (2, "twice")
    exact = EndRule(stalemate={"similarity": 1.0}, outcome="draw")
    lines = [("A", "one two three four"), ("A", "one two three five"), ("A", "one two three four")]
    assert play(lines, [exact])[0] == -1
    assert play([*lines[:1], *lines[:1], *lines[:1]], [exact])[0] == 2


def test_a_stalemate_can_make_the_repeater_lose() -> None:
    rule = EndRule(stalemate={}, outcome="speaker_loses", speakers=["B"])
    referee = Referee([rule], ["A", "B"])
    said = [Line("B", "Same."), Line("A", "Other."), Line("B", "Same."), Line("A", "More.")]
    said.append(Line("B", "Same."))
    outcome = referee.judge("B", "Same.", 4, said)
    assert outcome is not None and (outcome.winner, outcome.loser) == ("A", "B")
    assert outcome.matched == "Same."
    assert referee.judge("A", "More.", 3, said[:4]) is None


def test_a_long_repeated_turn_is_shortened_in_matched() -> None:
    long = "word " * 200
    said = [Line("A", long)] * 3
    outcome = Referee([STALEMATE], ["A", "B"]).judge("A", long, 2, said)
    assert outcome is not None and outcome.matched is not None
    assert len(outcome.matched) == 200 and outcome.matched.endswith("…")


async def test_a_looping_conversation_ends_in_a_draw_and_scripted_lines_count(
    tmp_path: Path,
) -> None:
    data = {
        "name": "loop",
        "agents": [
            {"name": "A", "model": "ma", "opening": "Cats are better."},
            {"name": "B", "model": "mb"},
        ],
        "max_turns": 20,
        "end": [
            {"phrase": "I lost", "outcome": "speaker_loses"},
            {"name": "stalemate", "stalemate": {}, "outcome": "draw"},
        ],
        "seed": 1,
    }
    backend = ScriptedBackend(
        {"ma": ["Cats are better.", "Cats are better!"], "mb": ["No.", "Dogs.", "Birds."]},
        models=["ma", "mb"],
    )
    settings = RunSettings(out_dir=tmp_path, retry=RetryPolicy(attempts=1, base=0.001))
    [result] = await run_scenarios(
        [scenario_from_data(data)], settings, pool=BackendPool.fixed(backend, settings)
    )
    outcome = read_transcript(result.path).end.outcome  # type: ignore[union-attr]
    # The opening (turn 0) and two generated repeats: A said it three times by turn 4.
    assert (outcome.reason, outcome.rule, outcome.turn) == ("end_rule", "stalemate", 4)
    assert (outcome.winner, outcome.loser, outcome.matched) == (None, None, "Cats are better!")


# ---------------------------------------------------------------- schema


def problems(end: str, tmp_path: Path) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nagents:\n  - {name: A, model: m}\n  - {name: B, model: m}\nend:\n" + end,
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (
            "  - {outcome: draw}\n",
            "6:5: end[0]: give exactly one of 'phrase' or 'regex' (or 'stalemate' for a "
            "stalemate rule)",
        ),
        (
            "  - {phrase: I lost, stalemate: {}, outcome: draw}\n",
            "6:5: end[0]: give exactly one of 'phrase' or 'regex' (or 'stalemate' for a "
            "stalemate rule)",
        ),
        (
            "  - {stalemate: {repeats: 1}, outcome: draw}\n",
            "6:27: end[0].stalemate.repeats: repeats counts turns said in a row: 2 to 50; got 1",
        ),
        (
            "  - {stalemate: {similarity: 0.2}, outcome: draw}\n",
            "end[0].stalemate.similarity: similarity is the share of words two turns have "
            "in common: 0.5 to 1.0 (1.0: the same words); got 0.2",
        ),
        (
            "  - {stalemate: {repeat: 3}, outcome: draw}\n",
            "end[0].stalemate.repeat: unknown key 'repeat' (did you mean 'repeats'?)",
        ),
        (
            "  - {stalemate: {}, outcome: draw, unless: [x]}\n",
            "end[0]: 'unless' applies to phrase and regex rules; "
            "a stalemate rule compares whole turns",
        ),
        (
            "  - {phrase: I lost, outcome: speaker_loses, objects: all}\n",
            "end[0].objects: expected a list of words or 'any'; got 'all'",
        ),
        (
            "  - {phrase: I lost, outcome: speaker_loses, objects: ['  ']}\n",
            "end[0].objects: an object needs a visible word; got an empty one",
        ),
        (
            "  - {regex: 'I lost', outcome: speaker_loses, objects: [the game]}\n",
            "end[0]: 'objects' needs statements_only: true (a regex rule's default is false)",
        ),
        (
            "  - {phrase: I lost, outcome: speaker_loses, statement_only: true}\n",
            "end[0].statement_only: unknown key 'statement_only' (did you mean 'statements_only'?)",
        ),
    ],
)
def test_bad_end_rules_are_one_line_errors(end: str, expected: str, tmp_path: Path) -> None:
    message = problems(end, tmp_path)
    assert expected in message
    assert len(message.splitlines()) == 1


def test_the_shipped_classroom_games_end_in_stalemates() -> None:
    for name in ("i-lost.yaml", "i-lost-builtin.yaml"):
        rules = load_scenario(ROOT / "scenarios" / name).end
        assert [r.outcome for r in rules if r.stalemate is not None] == ["draw"], name


ECHO = """\
name: echo
defaults:
  model: smollm2:135m
  options: {temperature: 0, num_predict: 16}
agents:
  - name: A
    persona: Repeat the user's message word for word. Say nothing else.
    opening: "I lost? Never. Cats are better than dogs."
  - name: B
    persona: Repeat the user's message word for word. Say nothing else.
max_turns: 8
end:
  - {phrase: "I lost", outcome: speaker_loses}
  - {name: stalemate, stalemate: {}, outcome: draw}
seed: 1
"""


@pytest.mark.realmodel
def test_a_real_model_caught_in_a_loop_ends_in_a_draw(tmp_path: Path) -> None:
    """SmolLM2 told to echo, greedily: its real replies (cut mid-sentence, with their own
    whitespace) must be recognised as one turn said over and over, well before the limit."""
    scenario = tmp_path / "echo.yaml"
    scenario.write_text(ECHO, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OPENAI_"))}
    command = [sys.executable, "-m", "runner.cli", "run", str(scenario), "--backend", "local"]
    result = subprocess.run(
        [*command, "--out", str(tmp_path), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [path] = sorted(tmp_path.glob("*.jsonl"))
    transcript = read_transcript(path)
    assert transcript.end is not None
    outcome = transcript.end.outcome
    assert (outcome.reason, outcome.rule, outcome.winner) == ("end_rule", "stalemate", None)
    assert outcome.turn is not None and outcome.turn < 7
    assert len(transcript.turns) == outcome.turn + 1
