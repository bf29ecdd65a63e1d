"""Fixtures of the analysis tests: hand-made transcripts (:mod:`.transcripts`) in a folder,
and logging restored after tests that run the CLI in-process."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.runner.analysis.transcripts import Conversation, Write, write_conversation


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """``write(agents=..., turns=..., **fields)`` writes one conversation under tmp_path."""
    folder = tmp_path / "transcripts"

    def _write(**fields: Any) -> Path:
        return write_conversation(folder, Conversation(**fields))

    return _write


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "transcripts"


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """Tests that call the CLI in-process let it configure logging for its streams (pytest's
    captured ones, closed afterwards); later tests get the configuration back."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "aiohttp")}
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in noisy.items():
        logging.getLogger(name).setLevel(value)
