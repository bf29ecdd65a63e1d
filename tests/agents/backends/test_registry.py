"""The backend registry: host normalisation and the ``auto`` choice."""

from __future__ import annotations

import importlib.util
import json

import pytest

import agents.backends as registry
from agents.backends import choose_backend, create_backend, normalize_host, ollama_target
from agents.backends.base import BackendSettings
from agents.backends.scripted import ScriptedBackend
from agents.errors import ConfigError, EngineMissing
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.ports import nowhere


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("localhost", "http://localhost:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("https://example.org/", "https://example.org:11434"),
        ("http://10.1.2.3:5000/base", "http://10.1.2.3:5000/base"),
    ],
)
def test_normalize_host(given: str, expected: str) -> None:
    assert normalize_host(given) == expected


def test_ollama_host_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert ollama_target()[0] == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "box:1234")
    assert ollama_target()[0] == "http://box:1234"
    assert ollama_target(("other:99",))[0] == "http://other:99"


async def test_auto_picks_ollama_when_a_server_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeOllama() as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.url)
        choice = await choose_backend("auto", BackendSettings())
    assert choice.name == "ollama" and fake.url in choice.reason


async def test_auto_picks_the_embedded_engine_without_ollama(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", nowhere())
    monkeypatch.setattr(registry, "local_engine_installed", lambda: True)
    choice = await choose_backend("auto", BackendSettings())
    assert choice.name == "local" and "no ollama server answered" in choice.reason


async def test_auto_without_ollama_or_engine_says_how_to_get_either(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", nowhere())
    monkeypatch.setattr(registry, "local_engine_installed", lambda: False)
    with pytest.raises(EngineMissing) as info:
        await choose_backend("auto", BackendSettings())
    message = str(info.value)
    assert "start ollama" in message and "sparring[local]" in message
    assert "\n" not in message


async def test_explicit_choice_is_kept_and_unknown_is_refused() -> None:
    assert (await choose_backend("openai", BackendSettings())).name == "openai"
    with pytest.raises(ConfigError, match="unknown backend 'vllm'"):
        await choose_backend("vllm", BackendSettings())
    with pytest.raises(ConfigError):
        create_backend("vllm", BackendSettings())


def test_without_llama_cpp_the_embedded_engine_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real_find_spec(name, *a),
    )
    assert registry.local_engine_installed() is False
    with pytest.raises(EngineMissing, match=r"pip install 'sparring\[local\]'"):
        create_backend("local", BackendSettings())


async def test_auto_with_a_v1_url_picks_the_openai_compatible_backend_without_probing() -> None:
    url = nowhere() + "/v1"  # nothing listens: the URL alone decides
    choice = await choose_backend("auto", BackendSettings(hosts=(url + "/",)))
    assert choice.name == "openai"
    assert choice.reason == f"the host {url} ends in /v1: an OpenAI-compatible server"


async def test_auto_picks_a_server_answering_v1_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "local_engine_installed", lambda: True)
    async with FakeOpenAI() as fake:
        root = fake.url.removesuffix("/v1")
        choice = await choose_backend("auto", BackendSettings(hosts=(root,)))
    assert choice.name == "openai"
    assert choice.reason == f"an OpenAI-compatible server answered at {fake.url}/models"


async def test_auto_with_an_ollama_host_picks_ollama() -> None:
    async with FakeOllama() as fake:
        choice = await choose_backend("auto", BackendSettings(hosts=(fake.url,)))
    assert choice.name == "ollama"


async def test_auto_falls_back_saying_what_it_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "local_engine_installed", lambda: True)
    host = nowhere()
    choice = await choose_backend("auto", BackendSettings(hosts=(host,)))
    assert choice.name == "local"
    assert choice.reason == (
        f"no ollama server answered at {host} and no OpenAI-compatible server at {host}/v1; "
        "using the embedded engine"
    )
    assert choice.alternative is not None and "start ollama" in choice.alternative


def test_every_engine_is_named_by_the_one_registry() -> None:
    from agents.backends import CHOICES, ENGINES
    from runner.scenario.schema import json_schema as scenario_schema
    from runner.tournament.spec import json_schema as tournament_schema

    assert CHOICES == ("auto", *ENGINES)
    for schema in (scenario_schema(), tournament_schema()):
        text = json.dumps(schema["properties"]["backend"])
        assert all(f'"{name}"' in text for name in CHOICES), text


def test_each_engine_is_labelled_from_its_registry_entry() -> None:
    from agents.backends import engine_label

    backend = ScriptedBackend(host="http://box:1/v1")
    backend.name = "openai"
    assert engine_label(backend) == "the OpenAI-compatible server at http://box:1/v1"
    backend.name = "local"
    assert engine_label(backend) == "the embedded engine"
    backend.name = "scripted"  # outside the registry: named with its host
    assert engine_label(backend) == "scripted at http://box:1/v1"
