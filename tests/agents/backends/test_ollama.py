"""OllamaBackend against a fake ollama server speaking the real wire format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agents.backends.base import (
    Backend,
    BackendSettings,
    ChatRequest,
    Delta,
    Message,
    Timeouts,
)
from agents.backends.config import GenerateConfig
from agents.backends.ollama import OllamaBackend
from agents.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ModelNotFound,
    ServerError,
    StreamError,
)
from runner.model.generate import RetryPolicy, generate
from tests.agents.backends.streams import collect
from tests.fakes.ollama_server import (
    CONCESSION,
    RUNNER_STOPPED_MESSAGE,
    SERVER_BUSY_MESSAGE,
    Drop,
    Error,
    FakeOllama,
    Garbage,
    MidStreamError,
    Stall,
)
from tests.fakes.ports import nowhere

MODEL = "qwen:0.5b"
VERDICT = {
    "type": "object",
    "properties": {
        "winner": {"enum": ["first", "second", "draw"]},
        "reason": {"type": "string"},
    },
    "required": ["winner", "reason"],
}
TIMEOUTS = Timeouts(connect=2.0, first_token=5.0, reply=10.0)


def ask(text: str = "Is coffee good for you?", model: str = MODEL, **options: Any) -> ChatRequest:
    messages: list[Message] = [
        {"role": "system", "content": "You argue."},
        {"role": "user", "content": text},
    ]
    return ChatRequest(model=model, messages=messages, config=GenerateConfig(**options))


@pytest.fixture
async def fake() -> AsyncIterator[FakeOllama]:
    async with FakeOllama([MODEL, "llama3.2:1b"]) as server:
        yield server


@pytest.fixture
async def backend(fake: FakeOllama) -> AsyncIterator[OllamaBackend]:
    backend = OllamaBackend(BackendSettings(hosts=(fake.url,), timeouts=TIMEOUTS))
    yield backend
    await backend.aclose()


async def test_streams_deltas_then_final_with_server_stats(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.script(MODEL, "Coffee is fine, mostly.")
    deltas, final = await collect(backend, ask())
    assert deltas == ["Coffee", " is", " fine,", " mostly."]
    assert final.completion_tokens == 4
    assert final.prompt_tokens is not None and final.prompt_tokens > 0
    assert final.done_reason == "stop"
    assert set(final.server) == {"total_ms", "load_ms", "prompt_eval_ms", "eval_ms"}
    assert final.server["load_ms"] == 1250.0  # ns converted: the fake's first-use load
    assert final.server["total_ms"] >= final.server["load_ms"]
    assert final.host == fake.url == backend.host
    assert isinstance(backend, Backend)


async def test_missing_model_is_final_and_says_how_to_pull(backend: OllamaBackend) -> None:
    with pytest.raises(ModelNotFound) as info:
        await collect(backend, ask(model="nope:1b"))
    err = info.value
    assert not err.retryable
    assert err.status == 404
    assert err.model == "nope:1b" and err.backend == "ollama" and err.host == backend.host
    assert "ollama pull nope:1b" in str(err)
    assert isinstance(err.__cause__, Exception)  # mapped with `raise ... from`


@pytest.mark.parametrize(
    ("status", "message"), [(500, RUNNER_STOPPED_MESSAGE), (503, SERVER_BUSY_MESSAGE)]
)
async def test_server_errors_are_retryable(
    fake: FakeOllama, backend: OllamaBackend, status: int, message: str
) -> None:
    fake.script(MODEL, Error(status, message))
    with pytest.raises(ServerError) as info:
        await collect(backend, ask())
    assert info.value.retryable
    assert info.value.status == status
    assert message in info.value.message


async def test_error_line_mid_stream_is_a_stream_error(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.script(MODEL, MidStreamError(after_tokens=2, message="runner crashed"))
    seen: list[str] = []
    with pytest.raises(StreamError) as info:
        async for event in backend.chat(ask()):
            if isinstance(event, Delta):
                seen.append(event.text)
    assert len(seen) == 2
    assert "runner crashed" in info.value.message
    assert info.value.retryable


async def test_dropped_connection_is_a_stream_error(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.script(MODEL, Drop(after_tokens=1))
    with pytest.raises(StreamError) as info:
        await collect(backend, ask())
    assert isinstance(info.value.__cause__, httpx.TransportError)


async def test_unreadable_line_is_a_bad_response(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.script(MODEL, Garbage(after_tokens=1))
    with pytest.raises(BadResponse) as info:
        await collect(backend, ask())
    assert not info.value.retryable


async def test_connection_refused_is_unavailable() -> None:
    host = nowhere()
    backend = OllamaBackend(BackendSettings(hosts=(host,), timeouts=TIMEOUTS))
    try:
        with pytest.raises(BackendUnavailable) as info:
            await collect(backend, ask())
        assert info.value.retryable and info.value.host == host
        with pytest.raises(BackendUnavailable):
            await backend.list_models()
    finally:
        await backend.aclose()


async def test_stalled_reply_times_out_then_succeeds_on_retry(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.script(MODEL, Stall(seconds=5.0), "Second time lucky.")
    generation = await generate(
        backend,
        ask(),
        timeouts=Timeouts(connect=2.0, first_token=0.3, reply=5.0),
        retry=RetryPolicy(attempts=2, base=0.01),
    )
    assert generation.text == "Second time lucky."
    assert generation.attempts == 2
    assert [type(e).__name__ for e in generation.failures] == [BackendTimeout.__name__]
    assert len(fake.requests) == 2


async def test_retry_after_server_busy_succeeds(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.script(MODEL, Error(503, SERVER_BUSY_MESSAGE), "Now I have time.")
    generation = await generate(
        backend, ask(), timeouts=TIMEOUTS, retry=RetryPolicy(attempts=3, base=0.01)
    )
    assert generation.text == "Now I have time."
    assert generation.attempts == 2
    assert generation.failures[0].status == 503


async def test_cancellation_is_not_swallowed(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.script(MODEL, Stall(seconds=5.0, after_tokens=1))
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in backend.chat(ask()):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_list_models(backend: OllamaBackend) -> None:
    models = {m.name: m for m in await backend.list_models()}
    assert set(models) == {MODEL, "llama3.2:1b"}
    qwen = models[MODEL]
    assert qwen.family == "qwen"
    assert qwen.parameter_size == "0.5B"
    assert qwen.quantization == "Q4_K_M"
    assert qwen.size is not None and qwen.size > 0
    assert qwen.digest and len(qwen.digest) == 64


async def test_pull_reports_progress_and_adds_the_model(backend: OllamaBackend) -> None:
    calls: list[tuple[str, int | None, int | None]] = []
    await backend.pull("phi3:3.8b", lambda *args: calls.append(args))
    assert calls[0] == ("pulling manifest", None, None)
    assert calls[-1] == ("success", None, None)
    completed = [done for _, done, total in calls if total and done is not None]
    assert completed == sorted(completed) and completed[-1] == 4_000_000
    assert "phi3:3.8b" in {m.name for m in await backend.list_models()}
    deltas, _ = await collect(backend, ask(model="phi3:3.8b"))
    assert deltas


async def test_pull_of_unknown_model_is_model_not_found() -> None:
    async with FakeOllama([MODEL], pullable=["phi3:3.8b"]) as fake:
        backend = OllamaBackend(BackendSettings(hosts=(fake.url,), timeouts=TIMEOUTS))
        try:
            with pytest.raises(ModelNotFound) as info:
                await backend.pull("no-such-model:1b", lambda *args: None)
            assert "file does not exist" in info.value.message
            assert "ollama pull" not in info.value.message
        finally:
            await backend.aclose()


async def test_ollama_host_env_is_honoured(
    fake: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{fake.port}")
    backend = OllamaBackend(BackendSettings(timeouts=TIMEOUTS))
    try:
        assert backend.host == fake.url
        assert backend.connection_key(MODEL) == f"ollama|{fake.url}"
        deltas, _ = await collect(backend, ask())
        assert deltas and len(fake.requests) == 1
    finally:
        await backend.aclose()
    # --host wins over the environment
    other = OllamaBackend(BackendSettings(hosts=("example.invalid:1234",)))
    assert other.host == "http://example.invalid:1234"


async def test_options_reach_the_server(fake: FakeOllama, backend: OllamaBackend) -> None:
    deltas, final = await collect(backend, ask(seed=7, temperature=0.0, num_predict=2))
    assert fake.requests[-1]["options"] == {"seed": 7, "temperature": 0.0, "num_predict": 2}
    assert fake.requests[-1]["stream"] is True
    assert len(deltas) == 2 and final.done_reason == "length"


async def test_keep_alive_and_structured_output_reach_the_server(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    deltas, _ = await collect(backend, ask(keep_alive="10m", json_schema=VERDICT, seed=3))
    sent = fake.requests[-1]
    assert sent["keep_alive"] == "10m"
    assert sent["format"] == VERDICT
    assert "keep_alive" not in sent["options"] and "json_schema" not in sent["options"]
    verdict = json.loads("".join(deltas))  # the fake follows the schema, as ollama's grammar does
    assert verdict["winner"] in ("first", "second", "draw") and verdict["reason"]
    await collect(backend, ask(keep_alive=0))
    assert fake.requests[-1]["keep_alive"] == 0  # 0 unloads: it must be sent, not dropped
    await collect(backend, ask())
    assert "keep_alive" not in fake.requests[-1] and "format" not in fake.requests[-1]


async def test_find_model_resolves_latest_and_hints_at_pull(backend: OllamaBackend) -> None:
    assert (await backend.find_model(MODEL)).name == MODEL
    async with FakeOllama(["llama3.2"]) as other:
        aliased = OllamaBackend(BackendSettings(hosts=(other.url,), timeouts=TIMEOUTS))
        try:
            assert (await aliased.find_model("llama3.2")).name == "llama3.2:latest"
        finally:
            await aliased.aclose()
    with pytest.raises(ModelNotFound) as info:
        await backend.find_model("nope:1b")
    assert info.value.hint == "run `ollama pull nope:1b` or pass --pull"
    assert backend.can_pull


def test_default_concurrency_follows_ollama_num_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = OllamaBackend(BackendSettings(hosts=("127.0.0.1:1",)))
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    assert backend.default_concurrency() == 1
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "4")
    assert backend.default_concurrency() == 4
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "lots")
    assert backend.default_concurrency() == 1


# -- the fake server's own behaviour ------------------------------------------------------


async def test_fake_default_reply_is_deterministic_and_concedes(fake: FakeOllama) -> None:
    one = fake.reply_for(MODEL, [{"role": "user", "content": "Cats beat dogs."}], {"seed": 1})
    assert one == fake.reply_for(
        MODEL, [{"role": "user", "content": "Cats beat dogs."}], {"seed": 1}
    )
    by_seed = {
        fake.reply_for(MODEL, [{"role": "user", "content": "Cats beat dogs."}], {"seed": s})
        for s in range(10)
    }
    assert len(by_seed) > 1
    history = [{"role": "user", "content": "Cats beat dogs."}]
    for _ in range(3):
        assert fake.reply_for(MODEL, history, {}) != CONCESSION
        history += [{"role": "assistant", "content": "No."}, {"role": "user", "content": "Yes."}]
    assert fake.reply_for(MODEL, history, {}) == CONCESSION
    fake.concede_after = None
    assert fake.reply_for(MODEL, history, {}) != CONCESSION


def test_fake_in_thread_speaks_the_wire_format() -> None:
    with FakeOllama.in_thread(["qwen"], token_delay=0.001) as fake:
        fake.script(None, "Hello world.")
        with httpx.Client(base_url=fake.url, timeout=5) as client:
            assert client.get("/api/version").json()["version"]
            body = {"model": "qwen", "messages": [{"role": "user", "content": "hi"}]}
            lines = [
                httpx.Response(200, content=line).json()
                for line in client.post("/api/chat", json=body).text.splitlines()
            ]
            whole = client.post("/api/chat", json={**body, "stream": False}).json()
            missing = client.post("/api/chat", json={**body, "model": "nope"})
            ps = client.get("/api/ps").json()
    assert [line["message"]["content"] for line in lines] == ["Hello", " world.", ""]
    assert [line["done"] for line in lines] == [False, False, True]
    assert {"created_at", "model"} <= set(lines[0])
    assert {
        "done_reason",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    } <= set(lines[-1])
    assert whole["done"] is True and whole["message"]["content"]
    assert missing.status_code == 404
    assert missing.json() == {"error": 'model "nope" not found, try pulling it first'}
    assert [m["name"] for m in ps["models"]] == ["qwen:latest"]


async def test_fake_parallel_slots_make_requests_wait() -> None:
    async with FakeOllama([MODEL], parallel=2, token_delay=0.01) as fake:
        limited = OllamaBackend(BackendSettings(hosts=(fake.url,), timeouts=TIMEOUTS))
        try:
            await asyncio.gather(*(collect(limited, ask(f"question {i}")) for i in range(5)))
        finally:
            await limited.aclose()
        assert fake.max_active == 2
        assert len(fake.requests) == 5


async def test_request_refused_by_the_library_is_a_bad_request(backend: OllamaBackend) -> None:
    # An empty model name is refused by ollama-python's pydantic models before any I/O.
    with pytest.raises(BadRequest) as info:
        await collect(backend, ask(model=""))
    assert not info.value.retryable


async def test_loaded_models_and_load_model_follow_what_the_server_holds() -> None:
    models = ["a:1b", "b:1b", "c:1b"]
    async with FakeOllama(models, max_loaded=2, load_delay=0.06) as fake:
        backend = OllamaBackend(BackendSettings(hosts=(fake.url,), timeouts=TIMEOUTS))
        try:
            assert await backend.loaded_models() == []
            await backend.load_model("a:1b", GenerateConfig(keep_alive="30m"))
            await backend.load_model("b:1b", GenerateConfig(keep_alive="30m"))
            _, final = await collect(backend, ask(model="c:1b"))  # a third: one must go
            listed = await backend.loaded_models()
        finally:
            await backend.aclose()
    assert final.server["load_ms"] == 60.0  # the load it waited for, as ollama reports it
    assert sorted(m.name for m in listed) == ["b:1b", "c:1b"]  # a: least recently used
    assert fake.residency.evicted == {"a:1b": 1}
    assert all(m.size and m.expires_at for m in listed)
    by_name = {m.name: m for m in listed}
    assert by_name["b:1b"].expires_at > by_name["c:1b"].expires_at  # type: ignore[operator]
    # b was asked to stay 30 minutes; c's request said nothing: ollama's 5 minutes.


async def test_the_fake_reloads_for_other_load_time_options_and_lets_models_expire() -> None:
    async with FakeOllama([MODEL], max_loaded=2) as fake:
        backend = OllamaBackend(BackendSettings(hosts=(fake.url,), timeouts=TIMEOUTS))
        try:
            await collect(backend, ask(num_ctx=2048))
            await collect(backend, ask(num_ctx=2048))
            assert fake.residency.loads[MODEL] == 1
            await collect(backend, ask(num_ctx=4096))  # a load-time option changed
            assert fake.residency.loads[MODEL] == 2
            await collect(backend, ask(num_ctx=4096, keep_alive="10m"))
            fake.residency.advance(599)
            assert [m.name for m in await backend.loaded_models()] == [MODEL]
            fake.residency.advance(2)  # its keep-alive has run out
            assert await backend.loaded_models() == []
        finally:
            await backend.aclose()
    assert fake.residency.expired == {MODEL: 1} and fake.residency.evictions == 0


def test_keep_alive_reads_like_ollamas() -> None:
    from tests.fakes.ollama_server import keep_alive_seconds

    assert keep_alive_seconds(None) == 300.0
    assert keep_alive_seconds("30m") == 1800.0 and keep_alive_seconds("1h30m") == 5400.0
    assert keep_alive_seconds(0) == 0.0 and keep_alive_seconds("0s") == 0.0
    assert keep_alive_seconds(-1) is None and keep_alive_seconds("-1m") is None
    assert keep_alive_seconds("90") == 90.0
