"""Operational logs: JSON lines off a terminal, readable and quiet on one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from runner import logs


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_json_lines_carry_level_time_and_bound_ids(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(fmt="json")
    structlog.contextvars.bind_contextvars(run_id="r1", conversation="c1")
    log = structlog.get_logger("sparring.test")
    log.info("retrying", attempt=2)
    log.debug("hidden at info level")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"] == "retrying" and entry["level"] == "info" and entry["attempt"] == 2
    assert (entry["run_id"], entry["conversation"]) == ("r1", "c1")
    assert entry["timestamp"].endswith("Z")


def test_console_shows_warnings_only_unless_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(fmt="console")
    log = structlog.get_logger("sparring.test")
    log.info("backend chosen")
    log.warning("backing off host")
    err = capsys.readouterr().err
    assert "backing off host" in err and "backend chosen" not in err
    logs.configure(fmt="console", verbose=True)
    structlog.get_logger("sparring.test").info("backend chosen")
    assert "backend chosen" in capsys.readouterr().err


def test_off_a_terminal_the_default_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure()  # pytest's captured stderr is not a terminal
    structlog.get_logger("sparring.test").warning("x")
    assert json.loads(capsys.readouterr().err)["event"] == "x"


def test_console_logs_are_inert_and_never_carry_credentials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure(fmt="console")
    structlog.get_logger("sparring.test").warning(
        "retrying", error="HTTP 500: \x1b]0;pwned\x07 at http://alice:S3cret@box:1/v1"
    )
    err = capsys.readouterr().err
    assert "\x1b]0;" not in err and "\\x1b]0;pwned" in err
    assert "S3cret" not in err and "http://***@box:1/v1" in err
    logs.configure(fmt="json")
    structlog.get_logger("sparring.test").warning("x", host="https://bob:pw@h")
    assert json.loads(capsys.readouterr().err)["host"] == "https://***@h"
