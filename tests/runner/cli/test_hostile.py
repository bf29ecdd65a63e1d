"""Hostile but fair input: what models, servers and files say never drives the terminal,
never crashes a run, and never leaks a password; transcripts keep the exact text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.terminal import printable
from runner.transcript import read_transcript
from tests.cli import (
    I_LOST,
    LLAMA,
    QWEN,
    no_traceback,
    on,
    records,
    sparring,
    transcripts,
)
from tests.fakes.ollama_server import Error, FakeOllama
from tests.fakes.openai_server import FakeOpenAI

# Control sequences a model might emit: window title, clear screen, 8-bit CSI, hyperlink,
# NUL, bell, right-to-left override, and rich markup that must stay literal text.
HOSTILE = (
    "Title\x1b]0;pwned\x07 clear\x1b[2J\x1b[H csi\x9b31m link"
    "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ nul\x00 bell\x07 rtl\u202eevil "
    "[bold red]not markup[/] [/]"
)
UNSAFE = ("\x1b", "\x9b", "\x00", "\x07", "\u202e")


def assert_inert(*texts: str) -> None:
    for text in texts:
        for ch in UNSAFE:
            assert ch not in text, f"{ch!r} reached the terminal"


def test_printable_shows_controls_and_keeps_text() -> None:
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("line\r\nnext\ttab") == "line\nnext\ttab"
    assert printable("\u202eevil\x9b\x00") == "\\u202eevil\\x9b\\x00"
    assert printable("[bold]x[/]") == "[bold]x[/]"  # brackets are not controls


def test_model_text_never_drives_the_terminal(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=[QWEN, LLAMA]) as server:
        server.script(QWEN, HOSTILE)
        live = sparring("run", I_LOST, *on(server, "--out", out, "--max-turns", "3"))
    assert live.returncode == 0, live.stderr
    no_traceback(live)
    assert_inert(live.stdout, live.stderr)
    assert "[bold red]not markup[/]" in live.stdout  # shown literally, not as styling
    (file,) = transcripts(out)
    transcript = read_transcript(file)
    assert transcript.turns[1].content == HOSTILE  # the transcript keeps the exact text
    shown = sparring("show", file)
    assert shown.returncode == 0
    assert_inert(shown.stdout, shown.stderr)
    assert "\\x1b]0;pwned" in shown.stdout  # made visible, not dropped


def test_server_error_text_and_model_names_are_inert(tmp_path: Path) -> None:
    evil_model = "evil[/]\x1b[2J:1b"
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: evil\nagents:\n"
        f"  - {{name: a, model: {json.dumps(evil_model)}}}\n"
        f"  - {{name: b, model: {json.dumps(QWEN)}}}\n"
        "max_turns: 2\n",
        encoding="utf-8",
    )
    with FakeOllama.in_thread(models=[QWEN, evil_model]) as server:
        server.script(evil_model, Error(400, "bad \x1b]0;owned\x07 request [/]"))
        run = sparring("run", scenario, *on(server, "--out", tmp_path / "out"))
        listed = sparring("models", *on(server))
        validated = sparring("validate", scenario)
    assert run.returncode == 1  # the conversation failed, with its error shown
    assert "bad \\x1b]0;owned\\x07 request [/]" in run.stdout
    assert listed.returncode == 0 and validated.returncode == 0
    for result in (run, listed, validated):
        no_traceback(result)
        assert_inert(result.stdout, result.stderr)
    assert "evil[/]\\x1b[2J:1b" in listed.stdout


def test_lone_surrogates_become_replacement_characters(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=[QWEN, LLAMA]) as server:
        server.script(QWEN, "broken \ud800 pair \udfff end")  # valid JSON escapes, not UTF-8
        result = sparring("run", I_LOST, *on(server, "--out", out, "--max-turns", "3"))
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    (file,) = transcripts(out)
    lines = records(file)
    turns, end = lines[1:-1], lines[-1]
    assert turns[1]["content"] == "broken \ufffd pair \ufffd end"
    assert end["turns"] == len(turns) == 3  # the end line agrees with the lines written


@pytest.mark.parametrize("where", ["--host", "OLLAMA_HOST"])
def test_credentials_in_the_host_are_sent_never_written(where: str, tmp_path: Path) -> None:
    secret = "S3cretPass"
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=[QWEN, LLAMA], basic_auth=("alice", secret)) as server:
        url = f"http://alice:{secret}@127.0.0.1:{server.port}"
        target = ["--host", url] if where == "--host" else []
        env = {"OLLAMA_HOST": url} if where == "OLLAMA_HOST" else {}
        run = sparring("run", I_LOST, *target, "--out", out, "-v", "--log-format", "json", **env)
        listed = sparring("models", *target, **env)
        dry = sparring("run", I_LOST, *target, "--dry-run", "-v", **env)
        assert all(a is not None and a.startswith("Basic ") for a in server.authorizations)
    for result in (run, listed, dry):
        assert result.returncode == 0, result.stderr
        assert secret not in result.stdout + result.stderr
    assert server.url in run.stdout  # the host itself is shown, without its userinfo
    (file,) = transcripts(out)
    assert secret not in file.read_text(encoding="utf-8")
    assert read_transcript(file).status == "success"


def test_credentials_reach_an_openai_compatible_server(tmp_path: Path) -> None:
    with FakeOpenAI.in_thread(models=[QWEN, LLAMA], basic_auth=("bob", "pw-123")) as fake:
        url = fake.url.replace("http://", "http://bob:pw-123@")
        result = sparring("run", I_LOST, "--backend", "openai", "--host", url, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pw-123" not in result.stdout + result.stderr
    assert "pw-123" not in transcripts(tmp_path)[0].read_text(encoding="utf-8")


def test_an_api_key_with_control_characters_is_one_clean_line(tmp_path: Path) -> None:
    result = sparring(
        "run", I_LOST, "--backend", "openai", "--api-key-env", "EVIL_KEY", "--out", tmp_path,
        EVIL_KEY="sk-abc\r\nX-Injected: 1",
    )  # fmt: skip
    assert result.returncode == 2
    no_traceback(result)
    assert result.stderr.count("\n") == 1
    assert "EVIL_KEY" in result.stderr and "control characters" in result.stderr
    assert "sk-abc" not in result.stderr


BOMB = "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["name: bomb", "agents: [{name: a, model: m}, {name: b, model: m}]"]
)


@pytest.mark.parametrize(
    ("case", "text", "message"),
    [
        ("alias-bomb", BOMB, "expands to more than"),
        ("deep", "name: deep\nagents: " + "[" * 50_000 + "]" * 50_000, "nested more than"),
        ("huge", "name: big\ndescription: '" + "x" * (50 * 1024 * 1024) + "'\n", "larger than"),
        ("binary", "name: \udcff\n", "not UTF-8"),
    ],
)
def test_hostile_scenario_files_are_refused_in_one_line(
    case: str, text: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    result = sparring("validate", path)
    assert result.returncode == 2
    no_traceback(result)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(str(path)) and message in result.stderr


LIMITS = {
    "repeat: 1000000000000": "repeat",
    "max_turns: 1e30": "max_turns",
    "max_turns: true": "max_turns",
    "defaults: {options: {num_predict: -5}}": "num_predict",
    "seed: -1": "seed",
}


@pytest.mark.parametrize("line", sorted(LIMITS))
def test_out_of_range_values_are_refused(line: str, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: t\nagents:\n  - {name: a, model: m}\n  - {name: b, model: m}\n" + line + "\n",
        encoding="utf-8",
    )
    result = sparring("validate", path)
    assert result.returncode == 2
    no_traceback(result)
    [problem] = result.stderr.splitlines()
    assert problem.startswith(f"{path}:5:") and LIMITS[line] in problem


@pytest.mark.parametrize("name", ["'   '", "' padded'", '"tab\\there"'])
def test_names_must_be_visible_one_line_labels(name: str, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: t\nagents:\n  - {{name: {name}, model: m}}\n  - {{name: b, model: m}}\n",
        encoding="utf-8",
    )
    result = sparring("validate", path)
    assert result.returncode == 2 and "agents[0].name" in result.stderr


@pytest.mark.parametrize(
    "option", ["--repeat=1000000000000", "--max-turns=0", "--concurrency=-1", "--seed=x"]
)
def test_out_of_range_options_are_refused(option: str) -> None:
    result = sparring("run", I_LOST, option, "--dry-run")
    assert result.returncode == 2
    no_traceback(result)
    assert option.split("=")[0] in result.stderr
