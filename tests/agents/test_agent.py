"""Each agent sees the conversation from its own side."""

from __future__ import annotations

from agents.agent import Agent, Utterance


def U(speaker: str, content: str) -> Utterance:
    return Utterance(speaker, content)


A = Agent(name="A", model="m", persona="You are A.")
B = Agent(name="B", model="m", persona="You are B.")


def test_two_agents_own_turns_are_assistant_others_user() -> None:
    turns = [U("A", "a1"), U("B", "b1"), U("A", "a2"), U("B", "b2")]
    assert A.view(turns, label_others=False, kickoff="Go.") == [
        {"role": "system", "content": "You are A."},
        {"role": "user", "content": "Go."},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "b1"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "b2"},
    ]
    assert B.view(turns, label_others=False) == [
        {"role": "system", "content": "You are B."},
        {"role": "user", "content": "a1"},
        {"role": "assistant", "content": "b1"},
        {"role": "user", "content": "a2"},
        {"role": "assistant", "content": "b2"},
    ]


def test_three_agents_label_and_merge_others() -> None:
    turns = [U("A", "a1"), U("B", "b1"), U("C", "c1"), U("A", "a2")]
    assert A.view(turns, label_others=True, kickoff="Go.") == [
        {"role": "system", "content": "You are A."},
        {"role": "user", "content": "Go."},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "B: b1\n\nC: c1"},
        {"role": "assistant", "content": "a2"},
    ]
    assert B.view(turns, label_others=True) == [
        {"role": "system", "content": "You are B."},
        {"role": "user", "content": "A: a1"},
        {"role": "assistant", "content": "b1"},
        {"role": "user", "content": "C: c1\n\nA: a2"},
    ]


def test_first_speaker_gets_the_kickoff() -> None:
    assert A.view([], label_others=False, kickoff="Start.") == [
        {"role": "system", "content": "You are A."},
        {"role": "user", "content": "Start."},
    ]
    no_persona = Agent(name="A", model="m")
    assert no_persona.view([], label_others=False, kickoff="Start.") == [
        {"role": "user", "content": "Start."}
    ]


def test_history_is_append_only_between_own_turns() -> None:
    """What an agent sent last time, plus its reply, is a prefix of what it sends next."""
    turns: list[Utterance] = []
    sent: list[dict[str, str]] = []
    for i in range(6):
        turns.append(U("B", f"b{i}"))
        prompt = [dict(m) for m in A.view(turns, label_others=False)]
        assert prompt[: len(sent)] == sent
        turns.append(U("A", f"a{i}"))
        sent = [*prompt, {"role": "assistant", "content": f"a{i}"}]


def test_window_keeps_the_last_turns_only() -> None:
    turns = [U("A", "a1"), U("B", "b1"), U("A", "a2"), U("B", "b2")]
    assert A.view(turns, label_others=False, window=2, kickoff="Go.") == [
        {"role": "system", "content": "You are A."},
        {"role": "user", "content": "Go."},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "b2"},
    ]


def test_consecutive_own_turns_merge() -> None:
    turns = [U("B", "b1"), U("A", "a1"), U("A", "a2")]
    assert A.view(turns, label_others=False)[-1] == {"role": "assistant", "content": "a1\n\na2"}
