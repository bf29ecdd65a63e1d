"""Real servers as they are, end to end from the CLI: a fake that behaves like
llama-cpp-python's server (streams cut by newer requests, no usage, models listed by file
path, a tokenizer endpoint, dropped streams on an overlong prompt)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.backends.local.gguf import resolve_model
from runner.transcript import read_transcript
from tests import cli
from tests.fakes.openai_server import LLAMA_CPP_PYTHON, FakeOpenAI, words
from tests.fakes.ports import free_port

PATH = "/home/someone/models/SmolLM2-135M-Instruct.Q4_1.gguf"


def sparring(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return cli.offline(*args, COLUMNS="80")


def scenario(tmp_path: Path, model: str = PATH, persona: str = "Answer briefly.") -> Path:
    path = tmp_path / "chat.yaml"
    path.write_text(
        f"""\
name: chat
defaults: {{model: "{model}", persona: "{persona}"}}
agents:
  - {{name: Ada, opening: "Shall we talk about the weather today?"}}
  - {{name: Max}}
max_turns: 4
""",
        encoding="utf-8",
    )
    return path


def llama_cpp_python(**overrides: Any) -> Any:
    return FakeOpenAI.in_thread([PATH], **(LLAMA_CPP_PYTHON | overrides))


def test_streams_cut_by_newer_requests_are_never_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with llama_cpp_python(token_delay=0.02) as fake:
        result = sparring(
            "run", scenario(tmp_path), "--backend", "openai", "--host", fake.url,
            "--repeat", "4", "--backoff", "0.01", "--out", out, "--quiet",
        )  # fmt: skip
    assert fake.interrupted > 0  # four at once (the default) on a server that interrupts
    transcripts = [read_transcript(p) for p in sorted(out.glob("*.jsonl"))]
    assert len(transcripts) == 4
    for transcript in transcripts:
        for turn in (t for t in transcript.turns if not t.scripted):
            assert turn.content.strip() and turn.done_reason == "stop", turn
        assert transcript.end is not None
        if transcript.status == "error":
            assert transcript.end.error is not None
            assert transcript.end.error.kind == "stream_error"
    failed = any(t.status == "error" for t in transcripts)
    assert result.returncode == (1 if failed else 0), result.stderr


def test_one_at_a_time_every_turn_is_whole_and_counted_by_the_tokenizer(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with llama_cpp_python() as fake:
        result = sparring(
            "run", scenario(tmp_path), "--backend", "openai", "--host", fake.url,
            "--repeat", "2", "--concurrency", "1", "--out", out,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert fake.interrupted == 0
    for path in sorted(out.glob("*.jsonl")):
        transcript = read_transcript(path)
        generated = [t for t in transcript.turns if not t.scripted]
        assert len(generated) == 3 and all(t.attempts == 1 for t in generated)
        for turn in generated:
            assert turn.completion_tokens == len(words(turn.content))
            assert turn.prompt_tokens is None  # not reported, and not guessed
        assert transcript.end is not None
        totals = transcript.end.totals
        assert totals.prompt_tokens is None
        assert totals.completion_tokens == sum(len(words(t.content)) for t in generated)
    assert "Ada" in result.stdout and "unknown" not in result.stdout


def test_without_a_tokenizer_counts_are_unknown_never_zero(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with llama_cpp_python(tokenizer=None) as fake:
        result = sparring(
            "run", scenario(tmp_path), "--backend", "openai", "--host", fake.url,
            "--repeat", "2", "--concurrency", "1", "--out", out,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "token counts unknown" in result.stderr
    for path in out.glob("*.jsonl"):
        end = read_transcript(path).end
        assert end is not None and end.totals.completion_tokens is None
    tally = result.stdout[result.stdout.index("conversations:") :]
    assert "unknown" in tally and " 0\n" not in tally


def test_a_model_listed_by_path_is_named_and_can_be_used(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with llama_cpp_python() as fake:
        named = scenario(tmp_path, model="smollm2:135m")
        root = fake.url.removesuffix("/v1")  # auto asks it for /v1/models
        missing = sparring("run", named, "--host", root, "--out", out)
        swapped = sparring(
            "run", named, "--host", fake.url, "--model", PATH, "--concurrency", "1",
            "--out", out, "--quiet",
        )  # fmt: skip
    assert missing.returncode == 2
    lines = missing.stderr.splitlines()
    assert lines[0].endswith(
        f"the OpenAI-compatible server at {fake.url} does not have smollm2:135m"
    ), missing.stderr
    assert f"it serves {PATH}: name it as the model, e.g. --model '{PATH}'" in missing.stderr
    assert f"an OpenAI-compatible server answered at {fake.url}/models" in missing.stderr
    assert swapped.returncode == 0, swapped.stderr
    (path,) = out.glob("*.jsonl")
    transcript = read_transcript(path)
    assert transcript.run.backend == "openai"
    assert [a.model for a in transcript.run.agents] == [PATH, PATH]
    assert transcript.run.overrides["models"] == {"*": PATH}


def test_an_overlong_prompt_stops_early_pointing_at_the_servers_log(tmp_path: Path) -> None:
    out = tmp_path / "out"
    long = " ".join(["blah"] * 60)
    with llama_cpp_python(context=40) as fake:
        result = sparring(
            "run", scenario(tmp_path, persona=long), "--host", fake.url,
            "--backoff", "0.01", "--out", out,
        )  # fmt: skip
    assert result.returncode == 1
    assert len(fake.chat_requests) == 3  # not the five --retries allows
    end = read_transcript(next(out.glob("*.jsonl"))).end
    assert end is not None and end.error is not None
    assert "stream ended without its final message" in end.error.message
    assert "the server's log may say why" in end.error.message
    assert "context" in result.stdout


def test_models_prints_long_ids_whole_when_piped() -> None:
    long = "/srv/models/" + "very-long-directory-name/" * 6 + "SmolLM2-135M-Instruct.Q4_1.gguf"
    with FakeOpenAI.in_thread([long, PATH]) as fake:
        result = sparring("models", "--host", fake.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"# openai at {fake.url}",
        f"{PATH}\t\t\t\t",
        f"{long}\t\t\t\t",
    ]


# -- the real thing: llama-cpp-python's server with the built-in SmolLM2 file ------------


@dataclass
class RealServer:
    url: str  # the server's root: auto finds /v1/models there
    model: str  # its id: the file path
    log: Path


@pytest.fixture(scope="module")
def llama_cpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    model = str(resolve_model("smollm2:135m").path)
    port = free_port()
    log = tmp_path_factory.mktemp("llama-cpp-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "512", "--n_threads", "2", "--verbose", "False",
    ]  # fmt: skip
    with open(log, "wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # until it answers: loading the model takes a moment
            assert server.poll() is None, log.read_text(errors="replace")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2):
                    break
            assert time.monotonic() < deadline, "llama_cpp.server did not start"
            time.sleep(0.2)
        yield RealServer(url, model, log)
    finally:
        server.terminate()
        server.wait(timeout=30)


TINY = """\
name: tiny
defaults:
  model: smollm2:135m
  persona: "{persona}"
  options: {{temperature: 0, num_predict: 12}}
agents:
  - {{name: Ada, opening: "Cats or dogs?"}}
  - {{name: Max}}
max_turns: 3
"""


def tiny(tmp_path: Path, persona: str = "Answer in one short sentence.") -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(persona=persona), encoding="utf-8")
    return path


@pytest.mark.realmodel
def test_llama_cpp_server_gives_whole_turns_and_counted_tokens(
    llama_cpp_server: RealServer, tmp_path: Path
) -> None:
    server = llama_cpp_server
    result = sparring(
        "run", tiny(tmp_path), "--host", server.url, "--model", server.model,
        "--concurrency", "1", "--out", tmp_path / "out", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    transcript = read_transcript(next((tmp_path / "out").glob("*.jsonl")))
    assert transcript.run.backend == "openai"
    assert "answered at" in (transcript.run.backend_reason or "")
    generated = [t for t in transcript.turns if not t.scripted]
    assert len(generated) == 2
    for turn in generated:
        assert turn.content.strip() and turn.done_reason in {"stop", "length"}
        assert turn.completion_tokens is not None and 0 < turn.completion_tokens <= 12
        assert turn.prompt_tokens is None


@pytest.mark.realmodel
def test_llama_cpp_server_overlong_prompt_points_at_its_log(
    llama_cpp_server: RealServer, tmp_path: Path
) -> None:
    server = llama_cpp_server
    result = sparring(
        "run", tiny(tmp_path, persona="blah " * 700), "--host", server.url,
        "--model", server.model, "--backoff", "0.05", "--retries", "8",
        "--out", tmp_path / "out", "--quiet",
    )  # fmt: skip
    assert result.returncode == 1
    end = read_transcript(next((tmp_path / "out").glob("*.jsonl"))).end
    # Stopped after three identical drops, before the eight attempts allowed (on a busy
    # machine the first failures have been seen to end differently, so not exactly 3).
    assert end is not None and end.error is not None and 3 <= end.error.attempts < 8
    assert "the server's log may say why" in end.error.message
    assert "exceed context window" in server.log.read_text(errors="replace")


@pytest.mark.realmodel
def test_llama_cpp_server_at_four_at_once_never_records_a_cut_reply(
    llama_cpp_server: RealServer, tmp_path: Path
) -> None:
    # Last of the three: its cut streams leave the server busy for a moment.
    server = llama_cpp_server
    sparring(
        "run", tiny(tmp_path), "--host", server.url, "--model", server.model,
        "--repeat", "3", "--backoff", "0.05", "--out", tmp_path / "out", "--quiet",
    )  # fmt: skip
    transcripts = [read_transcript(p) for p in (tmp_path / "out").glob("*.jsonl")]
    assert len(transcripts) == 3
    for transcript in transcripts:
        for turn in (t for t in transcript.turns if not t.scripted):
            assert turn.content.strip() and turn.done_reason in {"stop", "length"}
        if transcript.status == "error":
            assert transcript.end is not None and transcript.end.error is not None
            assert transcript.end.error.kind == "stream_error"
            assert "--concurrency 1" in transcript.end.error.message
        else:
            assert transcript.status == "success"
