"""A conversation side's context, kept, saved, restored or re-read, on the real models.

The promise under test is bit-exactness: whichever way a turn finds its context, the
logits its reply is sampled from are the very same numbers. Gemma 3 has sliding-window
layers, whose numbers also depend on where cells sit in the cache, so it is the harder
case; its prompts here are longer than its 512-token window.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from agents.backends.local import backend as local
from agents.backends.local.context import SessionContext
from agents.backends.local.gguf import resolve_model
from agents.backends.local.states import StateStore

pytestmark = pytest.mark.realmodel

# Past Gemma 3's 512-token window; SmolLM2 has no window and needs no long prompt.
RULES = {
    "gemma3:270m": " ".join(f"Rule {i}: answer question {i} kindly." for i in range(52)),
    "smollm2:135m": "Answer kindly.",
}
REPLIES = ["Apples are best.", "No, pears are.", "Plums, surely!", "Figs win."]


class _Captured(Exception):
    pass


@pytest.fixture(scope="module", params=["smollm2:135m", "gemma3:270m"])
def model(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any, str]]:
    import llama_cpp

    from agents.backends.local.core import silence

    silence(llama_cpp)
    resolved = resolve_model(request.param)
    llm = llama_cpp.Llama(
        model_path=str(resolved.path),
        n_ctx=4096,
        n_threads=1,  # bit-exactness does not depend on it; a busy machine's second core might
        verbose=False,
        chat_format=resolved.chat_format,
    )
    yield llm, resolved.chat_format, RULES[request.param]
    llm.close()


def prompts(model: tuple[Any, Any, str], turns: int, topic: str = "fruit") -> list[list[int]]:
    """One side's prompts over ``turns`` turns, each extending the one before."""
    llm, chat_format, rules = model
    rules = rules if topic == "fruit" else ""  # the other side's prompts stay short
    messages: list[dict[str, str]] = [
        {"role": "system", "content": f"You talk about {topic}. {rules}"},
        {"role": "user", "content": f"What is the best {topic}?"},
    ]
    out = []
    for turn in range(turns):
        out.append(_tokens(llm, local.chat_messages(messages, chat_format)))  # type: ignore[arg-type]
        messages += [
            {"role": "assistant", "content": REPLIES[turn % len(REPLIES)]},
            {"role": "user", "content": f"Why? ({turn})"},
        ]
    return out


def _tokens(llm: Any, messages: list[dict[str, str]]) -> list[int]:
    """The prompt tokens llama-cpp-python evaluates for ``messages``."""
    seen: list[int] = []

    def capture(tokens: Sequence[int]) -> None:
        seen.extend(tokens)
        raise _Captured

    original, llm.eval = llm.eval, capture
    try:
        llm.reset()
        with pytest.raises(_Captured):
            llm.create_chat_completion(messages=messages, max_tokens=1)
    finally:
        llm.eval = original
    return seen


def replies(model: tuple[Any, Any, str], prompts: list[list[int]]) -> list[list[int]]:
    """What each turn generated: the reply's tokens as the next prompt holds them."""
    llm = model[0]
    out = []
    for prompt, following in itertools.pairwise(prompts):
        reply = []
        for token in following[len(prompt) :]:
            if llama_control(llm, token):
                break
            reply.append(token)
        out.append(reply)
    return [*out, prompts[-1][-2:]]  # the last turn's reply is never read back


def llama_control(llm: Any, token: int) -> bool:
    import llama_cpp

    attr = llama_cpp.llama_vocab_get_attr(llm._model.vocab, token)
    return bool(attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL)


class Side:
    """Drives a SessionContext as the engine does: switch, evaluate, generate, settle."""

    def __init__(self, model: tuple[Any, Any, str], store: StateStore) -> None:
        self.llm = model[0]
        self.evaluate = self.llm.eval  # Llama.eval itself
        self.context = SessionContext(self.llm, store, "owner", self.evaluate)

    def turn(
        self, session: str | None, prompt: list[int], reply: Sequence[int]
    ) -> tuple[str, int, Any]:
        source = self.context.switch_to(session)
        reused = self.context.evaluate(prompt, lambda: False)
        # The raw float32 logits the reply would be sampled from, as a digest (a short
        # message when they differ): equal bytes, equal numbers.
        raw = ctypes.string_at(self.llm._ctx.get_logits(), 4 * self.llm.n_vocab())
        logits = hashlib.blake2b(raw, digest_size=16).hexdigest()
        for token in reply:  # generation evaluates what it samples, one token at a time
            self.evaluate([token])
        self.context.settle()
        return logits, reused, source


def test_kept_restored_and_reread_contexts_give_identical_logits(
    model: tuple[Any, Any, str],
) -> None:
    ours, other = prompts(model, 3), prompts(model, 3, topic="cheese")
    said, they_said = replies(model, ours), replies(model, other)
    store = StateStore(budget=1 << 30)
    side = Side(model, store)

    kept = [side.turn("kept/a", prompt, reply) for prompt, reply in zip(ours, said, strict=True)]
    assert [k[2] for k in kept] == ["new", "loaded", "loaded"]
    assert kept[1][1] > 0 and kept[2][1] > kept[1][1]  # each turn reads only what is new
    if side.context.keeps_replies:  # the reply generated stays in the context
        assert kept[1][1] == len(ours[0]) + len(said[0])

    swapped = []
    for turn in range(3):
        swapped.append(side.turn("swap/a", ours[turn], said[turn]))
        side.turn("swap/b", other[turn], they_said[turn])
    assert [s[2] for s in swapped] == ["new", "restored", "restored"]

    store.budget = 0  # nothing saved survives: every turn re-reads its prompt
    evicted = []
    for turn in range(3):
        evicted.append(side.turn("evict/a", ours[turn], said[turn]))
        side.turn("evict/b", other[turn], they_said[turn])
    assert [e[2] for e in evicted] == ["new", "evicted", "evicted"]
    assert all(e[1] == 0 for e in evicted)

    for turn in (1, 2):
        cold = evicted[turn][0]
        assert kept[turn][0] == cold and swapped[turn][0] == cold


def test_a_retried_turn_and_a_prompt_not_extending_the_last_read_as_cold_ones_would(
    model: tuple[Any, Any, str],
) -> None:
    ours = prompts(model, 3)
    # As under a history window, the next prompt does not extend the last one.
    unrelated = prompts(model, 2, topic="cheese")[1]
    side = Side(model, StateStore(budget=1 << 30))
    cut_short = replies(model, ours)[0][:2]
    first, _, _ = side.turn("retry/a", ours[0], cut_short)
    second, reused, _ = side.turn("retry/a", ours[0], cut_short)  # the same request again
    assert reused > 0 and first == second

    side.turn("window/a", ours[2], [])
    logits, reused, source = side.turn("window/a", unrelated, [])
    assert source == "loaded" and reused == 0
    cold, _, _ = side.turn("window-cold/a", unrelated, [])
    assert logits == cold


def test_a_side_restored_and_left_before_its_next_piece_keeps_its_context_exact(
    model: tuple[Any, Any, str],
) -> None:
    # A request stopped right after its side's context was restored (or refused by
    # llama-cpp-python before its first piece) leaves it for another side at once; on
    # Gemma 3 the saved context must not be cut back below where it was restored.
    ours, other = prompts(model, 3), prompts(model, 3, topic="cheese")
    said, they_said = replies(model, ours), replies(model, other)

    def play(stopped_early: bool) -> tuple[str, int, Any]:
        side = Side(model, StateStore(budget=1 << 30))
        for turn in (0, 1):
            side.turn("a", ours[turn], said[turn])
            side.turn("b", other[turn], they_said[turn])
        if stopped_early:
            assert side.context.switch_to("a") == "restored"
            with pytest.raises(InterruptedError):
                side.context.evaluate(ours[2], lambda: True)
            side.turn("b", other[2], they_said[2])
        return side.turn("a", ours[2], said[2])

    straight, early = play(stopped_early=False), play(stopped_early=True)
    assert early[2] == "restored" and early[1] == straight[1] > 0
    assert early[0] == straight[0]
