"""The sparring CLI as a child process: how tests start it, and what they read back.

Every CLI test starts the real command (``python -m runner.cli``) in a child process, so
exit codes, stdout/stderr, signals and the JSONL files on disk are the genuine article.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fakes.ollama_server import FakeOllama, normalize

ROOT = Path(__file__).resolve().parents[1]
I_LOST = ROOT / "scenarios" / "i-lost.yaml"
QWEN, LLAMA = "qwen:0.5b", "llama3.2:1b"
TIMEOUT = 30  # seconds for any one CLI invocation; a hang fails the test instead of the suite


def env(**extra: str) -> dict[str, str]:
    """The test process's environment without what would reach a real server or store."""
    values = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OLLAMA_", "OPENAI_")) and k != "PYTHONWARNINGS"
    }
    values.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1"})
    values.update(extra)
    return values


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "runner.cli", *map(str, args)]


def sparring(
    *args: str | Path, timeout: float = TIMEOUT, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion and capture what it printed."""
    return subprocess.run(
        command(*args),
        cwd=ROOT,
        env=env(**extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


NOWHERE = "http://127.0.0.1:9"  # nothing listens there: "no ollama server answered"


def offline(*args: str | Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """The CLI with console logs, on a machine where no ollama server answers."""
    return sparring(*args, "--log-format", "console", timeout=60, OLLAMA_HOST=NOWHERE, **extra)


def on(fake: FakeOllama, *extra: str | Path) -> list[str | Path]:
    """Options that send every request to ``fake``."""
    return ["--backend", "ollama", "--host", fake.url, *extra]


def transcripts(out: Path) -> list[Path]:
    return sorted(out.glob("*.jsonl")) if out.exists() else []


def records(path: Path) -> list[dict[str, Any]]:
    """Every line of a transcript, each of which must be a JSON object."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), "a finished transcript ends with a newline"
    return [json.loads(line) for line in text.splitlines()]


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def chats_for(fake: FakeOllama, model: str) -> list[dict[str, Any]]:
    return [r for r in fake.requests if normalize(str(r.get("model"))) == normalize(model)]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def interrupted(
    proc: subprocess.Popen[Any], ready: Callable[[], bool], what: str, times: int = 1
) -> int:
    """Ctrl-C ``proc`` (``times`` at once) as soon as ``ready`` holds; its exit code. A
    process that does not exit in time is killed and fails the test."""
    try:
        wait_for(ready, what)
        for _ in range(times):
            proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def line_count(out: Path) -> int:
    files = transcripts(out)
    return len(files[0].read_text(encoding="utf-8").splitlines()) if files else 0
