"""Token counts from the server's tokenizer when a stream carries no usage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from agents.backends.base import BackendSettings, ChatRequest, Delta, Final, Timeouts
from agents.backends.openai import OpenAIBackend
from tests.fakes.openai_server import FakeOpenAI, words

FAST = Timeouts(connect=2, first_token=5, reply=5)
PATH = "/models/SmolLM2-135M-Instruct.Q4_1.gguf"


async def reply(backend: OpenAIBackend, model: str = PATH) -> tuple[str, Final]:
    request = ChatRequest(model, [{"role": "user", "content": "tell me something"}])
    text, finals = "", []
    async for event in backend.chat(request):
        if isinstance(event, Delta):
            text += event.text
        else:
            finals.append(event)
    (final,) = finals
    return text, final


@pytest.fixture
async def backend_for() -> AsyncIterator[object]:
    made: list[OpenAIBackend] = []

    def make(fake: FakeOpenAI) -> OpenAIBackend:
        made.append(OpenAIBackend(BackendSettings(hosts=(fake.url,), timeouts=FAST)))
        return made[-1]

    yield make
    for backend in made:
        await backend.aclose()


@pytest.mark.parametrize("tokenizer", ["extras", "llama-server"])
async def test_without_usage_the_reply_is_counted_by_the_servers_tokenizer(
    tokenizer: str, backend_for
) -> None:
    async with FakeOpenAI.like_llama_cpp_python(PATH, tokenizer=tokenizer) as fake:
        backend = backend_for(fake)
        fake.script("one two three four five")
        with capture_logs() as logs:
            text, final = await reply(backend)
            await reply(backend)
    # llama-cpp-python's endpoint adds a BOS token to every text: it is not counted.
    assert final.completion_tokens == len(words(text)) == 5
    assert final.prompt_tokens is None  # the templated prompt cannot be counted from outside
    tokenize = [r for r in fake.requests if "tokenize" in r.path]
    assert len([r for r in tokenize if r.body[next(iter(r.body))] == ""]) == 1  # probed once
    assert [e["event"] for e in logs if "tokenizer" in e["event"]] == [
        "the server reports no usage: counting reply tokens with its tokenizer"
    ]


async def test_without_usage_or_tokenizer_counts_are_unknown_and_said_once(backend_for) -> None:
    async with FakeOpenAI.like_llama_cpp_python(PATH, tokenizer=None) as fake:
        backend = backend_for(fake)
        with capture_logs() as logs:
            _, first = await reply(backend)
            _, second = await reply(backend)
    assert first.completion_tokens is None and second.completion_tokens is None
    assert first.prompt_tokens is None
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert len(warned) == 1 and "token counts unknown" in warned[0]["event"]


async def test_a_server_that_sends_usage_is_never_asked_to_tokenize(backend_for) -> None:
    async with FakeOpenAI(["m"], tokenizer="extras") as fake:
        _, final = await reply(backend_for(fake), "m")
    assert final.completion_tokens is not None and final.prompt_tokens is not None
    assert not [r for r in fake.requests if "tokenize" in r.path]
