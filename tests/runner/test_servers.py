"""Real servers as they are, end to end from the CLI: a fake that behaves like
llama-cpp-python's server (streams cut by newer requests, no usage, models listed by file
path, a tokenizer endpoint, dropped streams on an overlong prompt)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from runner.transcript import read_transcript
from tests.fakes.openai_server import LLAMA_CPP_PYTHON, FakeOpenAI, words

ROOT = Path(__file__).resolve().parents[2]
PATH = "/home/someone/models/SmolLM2-135M-Instruct.Q4_1.gguf"


def sparring(*args: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OPENAI_"))}
    env |= {"COLUMNS": "80", "NO_COLOR": "1", "OLLAMA_HOST": "http://127.0.0.1:9"}
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", *map(str, args), "--log-format", "console"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


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
    assert "closed the connection mid-reply" in end.error.message
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
