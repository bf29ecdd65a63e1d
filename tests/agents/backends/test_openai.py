"""The OpenAI-compatible backend against a real HTTP fake speaking server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from agents.backends import create_backend
from agents.backends.base import BackendSettings, ChatRequest, Delta, Final, Timeouts
from agents.backends.config import GenerateConfig
from agents.backends.openai import OpenAIBackend, base_url
from agents.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ConfigError,
    ModelNotFound,
    ServerError,
    StreamError,
)
from runner.model.generate import RetryPolicy, generate
from tests.agents.backends.streams import collect
from tests.fakes.openai_server import Drop, Error, FakeOpenAI, MidStreamError, Stall
from tests.fakes.ports import nowhere

KEY = "sk-test-0123456789abcdef"
FAST = Timeouts(connect=2, first_token=5, reply=5)
RETRY = RetryPolicy(attempts=3, base=0.01)


def ask(text: str = "hi there", model: str = "fake", **options: Any) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[{"role": "user", "content": text}],
        config=GenerateConfig(**options),
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def make_backend() -> AsyncIterator[Callable[..., OpenAIBackend]]:
    made: list[OpenAIBackend] = []

    def make(*hosts: str, **settings: Any) -> OpenAIBackend:
        backend = OpenAIBackend(BackendSettings(hosts=hosts, **{"timeouts": FAST, **settings}))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


# -- streaming ------------------------------------------------------------------------


async def test_streams_deltas_then_final_with_usage(fake: FakeOpenAI, make_backend) -> None:
    fake.script("the quick brown fox")
    backend = make_backend(fake.url)
    deltas, final = await collect(backend, ask("one two three"))
    assert deltas == ["the", " quick", " brown", " fox"]
    assert final == Final(
        prompt_tokens=3, completion_tokens=4, done_reason="stop", host=fake.url, server={}
    )
    body = fake.chat_requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "one two three"}]


async def test_registry_builds_it(fake: FakeOpenAI) -> None:
    backend = create_backend("openai", BackendSettings(hosts=(fake.url,)))
    try:
        assert isinstance(backend, OpenAIBackend)
        deltas, _ = await collect(backend, ask("hello"))
        assert "".join(deltas).startswith("fake heard 1 messages")
    finally:
        await backend.aclose()


async def test_options_are_mapped_and_the_unsupported_ones_named(
    fake: FakeOpenAI, make_backend
) -> None:
    backend = make_backend(fake.url)
    options = {
        "num_predict": 2,
        "seed": 7,
        "stop": ["\n\n", "END"],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 20,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "num_ctx": 4096,
        "keep_alive": "5m",
    }
    request = ask(**options)
    _, final = await collect(backend, request)
    body = fake.chat_requests[0].body
    assert body["max_tokens"] == 2
    assert body["seed"] == 7
    assert body["stop"] == ["\n\n", "END"]
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 20)
    assert (body["min_p"], body["repeat_penalty"]) == (0.05, 1.1)
    for unsent in ("num_ctx", "num_predict", "keep_alive"):
        assert unsent not in body
    assert final.done_reason == "length" and final.completion_tokens == 2
    assert request.config.unsupported(backend.supported_options) == ["keep_alive", "num_ctx"]


async def test_structured_output_sends_a_json_schema(fake: FakeOpenAI, make_backend) -> None:
    schema = {
        "type": "object",
        "properties": {"winner": {"enum": ["first", "second", "draw"]}},
        "required": ["winner"],
    }
    backend = make_backend(fake.url)
    deltas, _ = await collect(backend, ask(json_schema=schema))
    body = fake.chat_requests[0].body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }
    assert json.loads("".join(deltas))["winner"] in ("first", "second", "draw")


async def test_stop_string_and_unlimited_num_predict(fake: FakeOpenAI, make_backend) -> None:
    backend = make_backend(fake.url)
    await collect(backend, ask(stop="END", num_predict=-1))
    body = fake.chat_requests[0].body
    assert body["stop"] == ["END"]  # a single string is a list of one
    assert "max_tokens" not in body


# -- hosts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434/v1"),
        ("http://gpu-box:8000/v1/", "http://gpu-box:8000/v1"),
        ("https://example.com/openai/v1", "https://example.com/openai/v1"),
    ],
)
def test_base_url(given: str, expected: str) -> None:
    assert base_url(given) == expected


def test_host_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert OpenAIBackend(BackendSettings()).host == "http://127.0.0.1:8080/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.5:8000")
    assert OpenAIBackend(BackendSettings()).host == "http://10.0.0.5:8000/v1"
    both = OpenAIBackend(BackendSettings(hosts=("a:1,b:2", "a:1")))
    assert both.host == "http://a:1/v1,http://b:2/v1"
    assert both.connection_key("m") == "openai|http://a:1/v1,http://b:2/v1"
    assert both.default_concurrency() == 8
    with pytest.raises(ConfigError, match="invalid"):
        OpenAIBackend(BackendSettings(hosts=("ftp://x",)))


# -- API key --------------------------------------------------------------------------


async def test_api_key_comes_from_the_named_variable(
    monkeypatch: pytest.MonkeyPatch, make_backend
) -> None:
    monkeypatch.setenv("SPARRING_TEST_KEY", KEY)
    async with FakeOpenAI(api_key=KEY) as fake:
        backend = make_backend(fake.url, api_key_env="SPARRING_TEST_KEY")
        deltas, _ = await collect(backend, ask())
        models = await backend.list_models()
    assert deltas
    assert [m.name for m in models] == ["fake"]
    assert {r.headers["Authorization"] for r in fake.requests} == {f"Bearer {KEY}"}
    assert KEY not in repr(backend)


def test_missing_key_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARRING_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="SPARRING_TEST_KEY"):
        OpenAIBackend(BackendSettings(api_key_env="SPARRING_TEST_KEY"))
    monkeypatch.setenv("SPARRING_TEST_KEY", "")
    with pytest.raises(ConfigError, match="SPARRING_TEST_KEY"):
        OpenAIBackend(BackendSettings(api_key_env="SPARRING_TEST_KEY"))


async def test_refused_key_never_leaks(monkeypatch: pytest.MonkeyPatch, make_backend) -> None:
    monkeypatch.setenv("SPARRING_TEST_KEY", KEY)
    async with FakeOpenAI(api_key="sk-the-right-one") as fake:
        backend = make_backend(fake.url, api_key_env="SPARRING_TEST_KEY")
        with capture_logs() as logs, pytest.raises(BadRequest) as caught:
            await generate(backend, ask(), timeouts=FAST, retry=RETRY)
    exc = caught.value
    assert exc.status == 401 and not exc.retryable
    assert "SPARRING_TEST_KEY" in str(exc)
    assert "Incorrect API key" in str(exc)  # the server's message is kept, minus the key
    for text in (str(exc), repr(exc), str(exc.to_dict()), str(logs), repr(backend)):
        assert KEY not in text
    assert len(fake.chat_requests) == 1  # final: no retry


async def test_401_without_a_key_says_how_to_give_one(make_backend) -> None:
    async with FakeOpenAI(api_key="sk-x") as fake:
        backend = make_backend(fake.url)
        with pytest.raises(BadRequest, match="api_key_env"):
            await collect(backend, ask())
    assert "Authorization" not in fake.requests[0].headers


# -- errors ---------------------------------------------------------------------------


async def test_unknown_model_is_model_not_found(fake: FakeOpenAI, make_backend) -> None:
    backend = make_backend(fake.url)
    with pytest.raises(ModelNotFound, match="does not exist") as caught:
        await collect(backend, ask(model="nope"))
    assert caught.value.status == 404 and caught.value.model == "nope"
    assert caught.value.host == fake.url and not caught.value.retryable


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_are_retryable(status: int, fake: FakeOpenAI, make_backend) -> None:
    fake.script(Error(status, "overloaded"))
    backend = make_backend(fake.url)
    with pytest.raises(ServerError, match="overloaded") as caught:
        await collect(backend, ask())
    assert caught.value.retryable and caught.value.status == status


@pytest.mark.parametrize(
    ("error", "expected", "text"),
    [
        (
            Error(404, body={"error": 'model "x" not found, try pulling it first'}),
            ModelNotFound,
            "try pulling",
        ),
        (Error(400, body={"error": 'model "x" not found'}), ModelNotFound, "not found"),
        (
            Error(400, body={"object": "error", "message": "bad temperature"}),
            BadRequest,
            "bad temperature",
        ),
        (Error(422, body={"detail": "messages: field required"}), BadRequest, "field required"),
        (Error(502, body="<html>Bad Gateway</html>"), ServerError, "Bad Gateway"),
    ],
)
async def test_error_bodies_in_every_style(
    error: Error, expected: type[Exception], text: str, fake: FakeOpenAI, make_backend
) -> None:
    fake.script(error)
    backend = make_backend(fake.url)
    with pytest.raises(expected, match=text):
        await collect(backend, ask())


async def test_mid_stream_error_is_a_stream_error(fake: FakeOpenAI, make_backend) -> None:
    fake.script(MidStreamError(after_tokens=2, message="CUDA out of memory"))
    backend = make_backend(fake.url)
    seen: list[str] = []
    with pytest.raises(StreamError, match="CUDA out of memory") as caught:
        async for event in backend.chat(ask("a b c d")):
            assert isinstance(event, Delta)
            seen.append(event.text)
    assert len(seen) == 2 and caught.value.retryable


async def test_dropped_stream_is_a_stream_error(fake: FakeOpenAI, make_backend) -> None:
    fake.script(Drop(after_tokens=2))
    backend = make_backend(fake.url)
    with pytest.raises(StreamError) as caught:
        await collect(backend, ask())
    assert caught.value.retryable and caught.value.host == fake.url


async def test_refused_port_is_unavailable(make_backend) -> None:
    url = nowhere() + "/v1"
    backend = make_backend(url)
    with pytest.raises(BackendUnavailable, match="cannot connect") as caught:
        await collect(backend, ask())
    assert caught.value.host == url and caught.value.retryable
    with pytest.raises(BackendUnavailable):
        await backend.list_models()


async def test_silent_server_hits_the_transport_read_timeout(
    fake: FakeOpenAI, make_backend
) -> None:
    fake.script(Stall(5))
    backend = make_backend(fake.url, timeouts=Timeouts(connect=2, first_token=9, reply=0.2))
    with pytest.raises(BackendTimeout):
        await collect(backend, ask())


async def test_a_stall_times_out_then_the_retry_succeeds(fake: FakeOpenAI, make_backend) -> None:
    fake.script(Stall(10))
    backend = make_backend(fake.url)
    generation = await generate(
        backend,
        ask("are you there"),
        timeouts=Timeouts(first_token=0.3, reply=5),
        retry=RetryPolicy(attempts=2, base=0.01),
    )
    assert generation.attempts == 2
    assert generation.failures[0].kind == "timeout"
    assert generation.text == "fake heard 1 messages, last: are you there"
    assert len(fake.chat_requests) == 2


# -- server-sent events parsing, against hand-written streams ---------------------------


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[list[bytes]], Any]]:
    runners: list[web.AppRunner] = []

    async def start(pieces: list[bytes]) -> str:
        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for piece in pieces:
                await response.write(piece)
                await asyncio.sleep(0)
            await response.write_eof()
            return response

        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}/v1"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_sse_parsing_follows_the_spec(raw_server, make_backend) -> None:
    url = await raw_server(
        [
            b": ping\r\n\r\nevent: message\r\nid: 1\r\n",
            b'data: {"choices":[{"delta":{"content":"he',  # an event split across writes
            b'llo"},"finish_reason":null}]}\r\n\r\n',
            b'data: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}\n\n',
            b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}\n\n',
            b"data: [DONE]\n\n",
        ]
    )
    deltas, final = await collect(make_backend(url), ask())
    assert deltas == ["hello"]
    assert (final.prompt_tokens, final.completion_tokens, final.done_reason) == (5, 1, "stop")


@pytest.mark.parametrize("done", [b"", b"data: [DONE]\n\n"], ids=["no-done", "done"])
async def test_stream_without_a_finish_reason_is_cut(done: bytes, raw_server, make_backend) -> None:
    # llama-cpp-python's server ends a stream it interrupts with [DONE] and no finish reason.
    url = await raw_server([b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n', done])
    backend = make_backend(url)
    events = [event async for event in backend.chat(ask())]
    assert events == [Delta("hi")]  # no Final: the reply was not complete
    with pytest.raises(StreamError, match="without its final message") as caught:
        await generate(backend, ask(), timeouts=FAST, retry=RetryPolicy(attempts=2, base=0.01))
    assert caught.value.attempts == 2


async def test_finish_reason_without_done_is_enough(raw_server, make_backend) -> None:
    chunk = b'{"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}'
    url = await raw_server([b"data: " + chunk + b"\n\n"])
    deltas, final = await collect(make_backend(url), ask())
    assert deltas == ["hi"] and final.done_reason == "stop" and final.prompt_tokens is None


async def test_bad_json_is_a_bad_response(raw_server, make_backend) -> None:
    url = await raw_server([b"data: {not json\n\n"])
    with pytest.raises(BadResponse, match="not json") as caught:
        await collect(make_backend(url), ask())
    assert not caught.value.retryable


# -- several hosts --------------------------------------------------------------------


async def test_requests_spread_round_robin(make_backend) -> None:
    async with FakeOpenAI() as one, FakeOpenAI() as two:
        backend = make_backend(one.url, two.url)
        hosts = [(await collect(backend, ask()))[1].host for _ in range(4)]
    assert hosts == [one.url, two.url, one.url, two.url]


async def test_the_least_busy_host_wins(make_backend) -> None:
    async with FakeOpenAI() as one, FakeOpenAI() as two:
        backend = make_backend(one.url, two.url)
        held = backend.chat(ask("a b c"))
        assert isinstance(await anext(held), Delta)  # one request stays in flight on `one`
        later = [(await collect(backend, ask()))[1].host for _ in range(2)]
        await held.aclose()
    assert later == [two.url, two.url]  # round robin alone would have sent the second to `one`


@pytest.mark.parametrize("failure", ["closed port", "always 500"])
async def test_a_failing_host_is_backed_off(failure: str, make_backend) -> None:
    async with FakeOpenAI() as bad, FakeOpenAI() as good:
        bad.script(*[Error(500, "broken")] * 10)
        bad_url = nowhere() + "/v1" if failure == "closed port" else bad.url
        backend = make_backend(bad_url, good.url)
        backend.pool.clock = lambda: 100.0  # time stands still: the back-off cannot run out
        results = [
            await generate(backend, ask(f"turn {i}"), timeouts=FAST, retry=RETRY) for i in range(5)
        ]
    assert all(r.final.host == good.url for r in results)
    assert [r.attempts for r in results] == [2, 1, 1, 1, 1]  # only the first touched `bad`
    assert len(good.chat_requests) == 5
    if failure == "always 500":
        assert len(bad.chat_requests) == 1


async def test_back_off_grows_and_resets_on_success(fake: FakeOpenAI, make_backend) -> None:
    fake.script(Error(500), Error(500))
    backend = make_backend(fake.url)
    for _ in range(2):
        with pytest.raises(ServerError):
            await collect(backend, ask())
    (host,) = backend.pool.hosts
    assert host.failures == 2
    # A lone host is used even while backed off: there is nowhere else to go.
    await collect(backend, ask())
    assert (host.failures, host.backoff_until) == (0, 0.0)


# -- models, pull, lifecycle ----------------------------------------------------------


async def test_list_models_is_the_union_over_hosts(make_backend) -> None:
    async with FakeOpenAI(models=["a", "b"]) as one, FakeOpenAI(models=["c", "b"]) as two:
        backend = make_backend(one.url, nowhere() + "/v1", two.url)
        models = await backend.list_models()
    assert [m.name for m in models] == ["a", "b", "c"]


async def test_list_models_reports_when_no_host_answers(make_backend) -> None:
    backend = make_backend(nowhere() + "/v1", nowhere() + "/v1")
    with pytest.raises(BackendUnavailable, match="no OpenAI-compatible server answered"):
        await backend.list_models()


async def test_pull_is_not_possible(fake: FakeOpenAI, make_backend) -> None:
    backend = make_backend(fake.url)
    with pytest.raises(ModelNotFound, match="cannot pull"):
        await backend.pull("fake", lambda *_: None)
    assert fake.requests == []


# -- servers as they are: llama-cpp-python's ----------------------------------------

LLAMA_CPP_PATH = "/home/me/models/SmolLM2-135M-Instruct.Q4_1.gguf"


async def test_a_stream_cut_by_a_newer_request_is_never_a_reply(make_backend) -> None:
    async with FakeOpenAI.like_llama_cpp_python(LLAMA_CPP_PATH, token_delay=0.05) as fake:
        backend = make_backend(fake.url)
        long = " ".join(["word"] * 40)
        fake.script(long, "short answer")
        cut: list[object] = []
        second: asyncio.Task[tuple[list[str], Final]] | None = None
        async for event in backend.chat(ask(model=LLAMA_CPP_PATH)):
            cut.append(event)
            if len(cut) == 3:  # a few tokens in, a newer request arrives
                second = asyncio.create_task(collect(backend, ask(model=LLAMA_CPP_PATH)))
        assert second is not None
        _, final = await second
    # Some text, then [DONE] without a finish reason: no Final, so the runner retries.
    assert fake.interrupted == 1 and final.done_reason == "stop"
    assert cut and all(isinstance(event, Delta) for event in cut)
    assert len(cut) < 40


async def test_models_listed_by_path_are_named_in_the_error(make_backend) -> None:
    async with FakeOpenAI.like_llama_cpp_python(LLAMA_CPP_PATH) as fake:
        backend = make_backend(fake.url)
        with pytest.raises(ModelNotFound) as caught:
            await backend.find_model("smollm2:135m")
        assert (await backend.find_model(LLAMA_CPP_PATH)).name == LLAMA_CPP_PATH
    hint = caught.value.hint or ""
    assert f"it serves {LLAMA_CPP_PATH}" in hint
    assert f"--model '{LLAMA_CPP_PATH}'" in hint


async def test_the_id_that_looks_like_the_name_is_suggested(make_backend) -> None:
    served = ["/m/Qwen2-0.5B.gguf", "/m/SmolLM2-135M-Instruct.Q4_1.gguf", "/m/other.gguf"]
    async with FakeOpenAI(served) as fake:
        backend = make_backend(fake.url)
        with pytest.raises(ModelNotFound) as caught:
            await backend.find_model("smollm2:135m")
        with pytest.raises(ModelNotFound) as unlike:
            await backend.find_model("mistral")
    assert "e.g. --model '/m/SmolLM2-135M-Instruct.Q4_1.gguf'" in (caught.value.hint or "")
    assert "--model" not in (unlike.value.hint or "")
    assert all(path in (unlike.value.hint or "") for path in served)


async def test_an_overlong_prompt_stops_after_identical_drops_with_a_hint(make_backend) -> None:
    async with FakeOpenAI.like_llama_cpp_python(LLAMA_CPP_PATH, context=8) as fake:
        backend = make_backend(fake.url)
        with pytest.raises(StreamError) as caught:
            await generate(
                backend,
                ask(" ".join(["long"] * 20), model=LLAMA_CPP_PATH),
                timeouts=FAST,
                retry=RetryPolicy(attempts=5, base=0.001),
            )
    assert caught.value.attempts == 3 and len(fake.chat_requests) == 3
    message = str(caught.value)
    assert "stream ended without its final message" in message
    assert "context" in message and "server's log" in message
