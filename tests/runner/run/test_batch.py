"""Batches through the command line at their limits: many conversations under a low
open-file limit, a full disk, a double Ctrl-C, and exit codes that --debug leaves alone."""

from __future__ import annotations

import json
import resource
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.transcript import read_transcript
from tests.cli import (
    I_LOST,
    LLAMA,
    QWEN,
    ROOT,
    TIMEOUT,
    command,
    env,
    interrupted,
    line_count,
    no_traceback,
    on,
    transcripts,
)
from tests.fakes.ollama_server import FakeOllama


def limited(resource_id: int, value: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource_id, (value, value))

    return apply


def run_on_fake(out: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``sparring run ARGS --quiet`` into ``out``, against a fake ollama with the game's models."""
    with FakeOllama.in_thread(models=[QWEN, LLAMA]) as server:
        argv = ["run", *args, *on(server, "--out", out, "--quiet")]
        return run_limited(argv, lambda: None, timeout=TIMEOUT)


def run_limited(
    args: list[str | Path], preexec: Callable[[], None], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args),
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=preexec,
    )


def every_line_is_json(files: list[Path]) -> None:
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n"), file
        for line in text.splitlines():
            json.loads(line)


def test_many_conversations_run_under_a_low_open_file_limit(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=[QWEN, LLAMA]) as server:
        result = run_limited(
            [
                "run",
                I_LOST,
                *on(
                    server,
                    "--out",
                    out,
                    "--repeat",
                    "300",
                    "--quiet",
                    "--concurrency",
                    "8",
                    "--max-conversations",
                    "5000",
                    "--log-format",
                    "console",
                ),
            ],
            limited(resource.RLIMIT_NOFILE, 128),
        )
    assert result.returncode == 0, result.stderr[-2000:]
    no_traceback(result)
    assert "open-file limit is low" in result.stderr  # 5000 asked, fewer allowed, said once
    files = transcripts(out)
    assert len(files) == 300
    assert {read_transcript(f).status for f in files} == {"success"}
    assert "300 conversations: 300 success" in result.stdout  # the tally, not 300 lines
    assert result.stdout.count("\n") < 40


def test_a_full_disk_ends_the_run_with_one_line_and_valid_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=[QWEN, LLAMA], concede_after=None) as server:
        result = run_limited(
            [
                "run",
                I_LOST,
                *on(server, "--out", out, "--repeat", "6", "--quiet", "--log-format", "console"),
            ],
            # No file may grow past 5000 bytes: each transcript fills up mid-conversation.
            limited(resource.RLIMIT_FSIZE, 5000),
        )
    assert result.returncode == 1
    no_traceback(result)
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"sparring: {out}: cannot write transcripts: File too large"
    files = transcripts(out)
    assert files
    every_line_is_json(files)  # cut lines were cut back: every line on disk is whole
    for file in files:
        transcript = read_transcript(file)
        assert not transcript.truncated
        if transcript.end is not None:  # where the end line still fitted, it says why
            assert transcript.end.status in ("error", "cancelled")


def test_a_double_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stderr = tmp_path / "stderr"
    with (
        FakeOllama.in_thread(models=[QWEN, LLAMA], token_delay=0.02) as server,
        stderr.open("w") as err,
    ):
        proc = subprocess.Popen(
            command("run", I_LOST, *on(server, "--out", out, "--repeat", "4", "--quiet")),
            cwd=ROOT,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        # Twice, impatient: the second at once, while transcripts close.
        code = interrupted(
            proc, lambda: server.active >= 1 and line_count(out) >= 2, "a reply in flight", 2
        )
    text = stderr.read_text()
    assert code == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    files = transcripts(out)
    every_line_is_json(files)
    assert {read_transcript(f).status for f in files} == {"cancelled"}


def test_the_summary_after_ctrl_c_lists_cancelled_and_unstarted_conversations(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    stdout = tmp_path / "stdout"
    with (
        FakeOllama.in_thread(models=[QWEN, LLAMA], token_delay=0.05) as server,
        stdout.open("w") as out_f,
    ):
        proc = subprocess.Popen(
            command(
                "run",
                I_LOST,
                *on(server, "--out", out, "--repeat", "5", "--max-conversations", "2", "--quiet"),
            ),
            cwd=ROOT,
            env=env(),
            stdout=out_f,
            stderr=subprocess.DEVNULL,
        )
        # Two conversations in flight, three waiting for a free place.
        code = interrupted(
            proc, lambda: server.active >= 1 and len(transcripts(out)) == 2, "two started"
        )
    assert code == 130
    text = stdout.read_text()
    files = transcripts(out)
    assert len(files) == 2
    assert {read_transcript(f).status for f in files} == {"cancelled"}
    for file in files:  # listed like finished ones, each with its transcript
        assert str(file) in text
    assert text.count("  cancelled  cancelled") == 2
    assert "more in" not in text
    assert "  3 planned conversations not started" in text
    assert "2 conversations: 2 cancelled" in text


def test_the_summary_names_the_out_folder_for_conversations_not_listed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_on_fake(out, I_LOST, "--repeat", "12")
    assert result.returncode == 0, result.stderr
    assert f"  ... 2 more in {out}\n" in result.stdout
    assert "not started" not in result.stdout


def test_debug_adds_detail_but_keeps_the_exit_code(tmp_path: Path) -> None:
    args = ["run", I_LOST, "--backend", "ollama", "--host", "http://127.0.0.1:9", "--out", tmp_path]
    plain = run_limited(args, lambda: None, timeout=TIMEOUT)
    debug = run_limited([*args, "--debug"], lambda: None, timeout=TIMEOUT)
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" in debug.stderr and "Traceback" not in plain.stderr


@pytest.mark.parametrize("length", [27, 28, 64])
def test_long_scenario_names_never_cut_the_repeat_or_id_out_of_file_names(
    length: int, tmp_path: Path
) -> None:
    name = "x" * length
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        I_LOST.read_text(encoding="utf-8").replace("name: i-lost", f"name: {name}"),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = run_on_fake(out, scenario, "--repeat", "2")
    assert result.returncode == 0, result.stderr
    for file in transcripts(out):
        run = read_transcript(file).run
        assert run is not None
        assert file.name.endswith(f"_{run.repeat_index:03d}_{run.conversation_id}.jsonl")


def test_the_summary_lists_conversations_in_plan_order_when_a_file_is_given_twice(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    result = run_on_fake(out, I_LOST, I_LOST, "--repeat", "2", "--max-turns", "2")
    assert result.returncode == 0, result.stderr
    labels = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  i-")]
    assert labels == ["i-lost#0", "i-lost#1", "i-lost#0", "i-lost#1"]
