"""Whole scenarios through the CLI on real engines: the embedded model, and the same
scenario on ollama, the embedded engine and an OpenAI-compatible server by changing only
``--backend``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.transcript import Transcript, iter_transcripts, read_transcript
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


def sparring(*args: str | Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "OPENAI_"))}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", *map(str, args), "--log-format", "console"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
        check=False,
    )


def only_transcript(out: Path) -> Transcript:
    [path] = sorted(out.glob("*.jsonl"))
    return read_transcript(path)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GREEDY = """\
name: greedy
defaults:
  model: smollm2:135m
  options: {temperature: 0, seed: 5, num_predict: 24}
agents:
  - name: Ada
    persona: You are Ada. Answer in one short sentence.
    opening: What is the best fruit?
  - name: Max
    persona: You are Max. Disagree politely in one short sentence.
max_turns: 4
"""


@pytest.mark.realmodel
def test_quickstart_runs_on_the_embedded_model(tmp_path: Path) -> None:
    result = sparring(
        "run", QUICKSTART, "--backend", "local", "--out", tmp_path, "--max-turns", "4"
    )
    assert result.returncode == 0, result.stderr
    transcript = only_transcript(tmp_path)
    assert transcript.run.backend == "local" and transcript.status == "success"
    generated = [t for t in transcript.turns if not t.scripted]
    assert len(generated) == 3
    for turn in generated:
        assert turn.content.strip()
        assert turn.completion_tokens and turn.completion_tokens > 0
        assert turn.prompt_tokens and turn.prompt_tokens > 0
        assert turn.ttft_ms is not None and turn.latency_ms is not None
        assert turn.completion_tokens <= 80  # the scenario's num_predict
        assert turn.content in result.stdout  # streamed live


@pytest.mark.realmodel
def test_same_seed_at_temperature_zero_gives_the_same_transcript(tmp_path: Path) -> None:
    scenario = write(tmp_path, GREEDY)
    contents = []
    for attempt in ("first", "second"):
        out = tmp_path / attempt
        result = sparring("run", scenario, "--backend", "local", "--out", out, "--quiet")
        assert result.returncode == 0, result.stderr
        contents.append([t.content for t in only_transcript(out).turns])
    assert contents[0] == contents[1]
    assert all(text.strip() for text in contents[0])


@pytest.mark.realmodel
def test_stop_sequence_and_num_predict_are_honoured(tmp_path: Path) -> None:
    text = GREEDY.replace(
        "options: {temperature: 0, seed: 5, num_predict: 24}",
        "options: {temperature: 0.7, seed: 9, num_predict: 6, stop: ['.', '!', '?']}",
    )
    result = sparring(
        "run", write(tmp_path, text), "--backend", "local", "--out", tmp_path, "--quiet"
    )
    assert result.returncode == 0, result.stderr
    generated = [t for t in only_transcript(tmp_path).turns if not t.scripted]
    for turn in generated:
        assert turn.completion_tokens is not None and turn.completion_tokens <= 6
        assert not any(mark in turn.content for mark in ".!?")
        assert turn.done_reason in {"stop", "length"}


@pytest.mark.realmodel
def test_a_scenario_with_two_model_families_runs(tmp_path: Path) -> None:
    debate = ROOT / "scenarios" / "debate.yaml"
    result = sparring("run", debate, "--backend", "local", "--out", tmp_path, "--max-turns", "3")
    assert result.returncode == 0, result.stderr
    transcript = only_transcript(tmp_path)
    assert [t.model for t in transcript.turns] == ["smollm2:135m", "gemma3:270m", "smollm2:135m"]
    assert all(t.completion_tokens for t in transcript.turns if not t.scripted)


def _run_on(backend: str, host: str | None, out: Path) -> Transcript:
    args: list[str | Path] = ["run", QUICKSTART, "--backend", backend, "--out", out, "--quiet"]
    args += ["--max-turns", "3"]
    if host:
        args += ["--host", host]
    result = sparring(*args)
    assert result.returncode == 0, result.stderr
    return only_transcript(out)


@pytest.mark.realmodel
def test_the_same_scenario_runs_on_every_engine(tmp_path: Path) -> None:
    with FakeOllama.in_thread(models=["smollm2:135m"]) as ollama:
        on_ollama = _run_on("ollama", ollama.url, tmp_path / "ollama")
        assert ollama.requests and ollama.requests[0]["model"] == "smollm2:135m"
    with FakeOpenAI.in_thread(models=["smollm2:135m"]) as openai:
        on_openai = _run_on("openai", openai.url, tmp_path / "openai")
        assert openai.chat_requests
    on_local = _run_on("local", None, tmp_path / "local")
    for transcript, backend in ((on_ollama, "ollama"), (on_openai, "openai"), (on_local, "local")):
        assert transcript.run.backend == backend
        assert transcript.run.scenario_hash == on_local.run.scenario_hash
        assert transcript.status == "success" and len(transcript.turns) == 3
        assert all(t.content.strip() for t in transcript.turns)


@pytest.mark.realmodel
def test_output_survives_two_models_loading_at_once(tmp_path: Path) -> None:
    """Two models load concurrently in a simultaneous round; the terminal output (stdout)
    must still carry every turn and the summary afterwards."""
    text = """\
name: two-loads
order: simultaneous
defaults: {options: {num_predict: 4, temperature: 0}}
agents:
  - {name: Small, model: smollm2:135m}
  - {name: Gemma, model: gemma3:270m}
max_turns: 4
"""
    result = sparring("run", write(tmp_path, text), "--backend", "local", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    transcript = only_transcript(tmp_path)
    assert len(transcript.turns) == 4
    assert "summary" in result.stdout
    assert result.stdout.count("Gemma (gemma3:270m)") == 2


# --- an engine worker that dies ------------------------------------------------------------

PAIR = GREEDY.replace("num_predict: 24", "num_predict: 12").replace("max_turns: 4", "max_turns: 3")


def _pair(
    tmp_path: Path, out: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[Transcript]]:
    scenario = write(tmp_path, PAIR)
    result = sparring("run", scenario, "--backend", "local", "--out", out, "--repeat", "2", **env)
    found = sorted(iter_transcripts([out]), key=lambda t: t.run.repeat_index if t.run else -1)
    return result, found


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    tmp = tmp_path_factory.mktemp("undisturbed")
    result, found = _pair(tmp, tmp / "out")
    assert result.returncode == 0, result.stderr
    return [[turn.content for turn in t.turns] for t in found]


@pytest.mark.realmodel
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGSEGV"])
def test_a_batch_survives_an_engine_worker_dying_mid_reply(
    sig: str, tmp_path: Path, undisturbed: list[list[str]]
) -> None:
    # The first worker dies after three tokens of its first reply; the next one runs.
    result, found = _pair(tmp_path, tmp_path / "out", SPARRING_LOCAL_FAULT=f"{sig}:3:1")
    assert result.returncode == 0, result.stderr
    assert f"died of {sig}" in result.stderr and "Traceback" not in result.stderr
    assert [t.status for t in found] == ["success", "success"]
    assert [[turn.content for turn in t.turns] for t in found] == undisturbed
    first, second = ([turn.attempts for turn in t.turns if not turn.scripted] for t in found)
    assert first[0] == 2 and all(a == 1 for a in first[1:] + second)


@pytest.mark.realmodel
def test_an_engine_that_dies_on_every_request_ends_the_run_with_one_line(
    tmp_path: Path,
) -> None:
    result, found = _pair(tmp_path, tmp_path / "out", SPARRING_LOCAL_FAULT="SIGSEGV:0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    stopped = [line for line in result.stdout.splitlines() if "times in a row" in line]
    assert len(stopped) == 2 and "this model is stopped" in stopped[0]  # one per game
    assert [t.status for t in found] == ["error", "error"]  # both files whole and readable
    assert {t.end.error.type for t in found if t.end and t.end.error} == {"EngineFailed"}
