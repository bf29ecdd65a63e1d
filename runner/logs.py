"""Operational logs (structlog): readable on a terminal, JSON lines otherwise.

Logs are for operators (retries, backend choice, pulls); transcripts are the data.
They go to stderr so stdout carries only the conversation and the summary.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from agents.backends import redact
from runner.terminal import printable

LogFormat = Literal["console", "json"]


def _inert(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Log values come from servers and models too: no credentials, no terminal control."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = printable(redact(value))
    return event


def _redacted(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def configure(*, fmt: LogFormat | None = None, verbose: bool = False, debug: bool = False) -> None:
    """Set up structlog once per process.

    ``fmt`` None picks console on a terminal and JSON otherwise. On a terminal the live
    conversation is the main output, so only warnings show unless ``verbose``.
    """
    stream = sys.stderr
    if fmt is None:
        fmt = "console" if stream.isatty() else "json"
    if debug:
        level = logging.DEBUG
    elif verbose or fmt == "json":
        level = logging.INFO
    else:
        level = logging.WARNING
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if fmt == "json" else structlog.dev.set_exc_info,
            # JSON escapes control characters itself; a terminal needs them made visible.
            _redacted if fmt == "json" else _inert,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # llama.cpp, httpx and aiohttp speak through stdlib logging; keep them quiet unless debugging.
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=stream)
    for noisy in ("httpx", "httpcore", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
