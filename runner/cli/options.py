"""What several commands share: argument types, the common options, the engine options.

Light on purpose: every command's arguments are built from these for every invocation,
``sparring --version`` included.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.backends import CHOICES
from agents.backends.base import Timeouts

if TYPE_CHECKING:
    from runner.settings import RunSettings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def count(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"expected a number from 1 to {limit}, got {text}")
        return value

    return parse


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 86400, got {text}")
    return value


def seed(text: str) -> int:
    return 0 if text.strip() == "0" else count(2**63 - 1)(text)


def common() -> argparse.ArgumentParser:
    """Options every command takes."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        help="operational logs on stderr (default: console on a terminal, json otherwise)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="info-level logs on a terminal"
    )
    return parser


def backend() -> argparse.ArgumentParser:
    """Which engine, where: the options of every command that talks to one."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--backend",
        choices=CHOICES,
        help="engine to use (default: the scenario's, else auto: "
        "ollama if a server answers, else the embedded engine)",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="URL",
        help="server address; repeat for several OpenAI-compatible hosts (default: OLLAMA_HOST)",
    )
    parser.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding an API key (openai)"
    )
    return parser


def add_limits(parser: argparse.ArgumentParser) -> None:
    """How hard to push the servers, and how long to wait for them."""
    parser.add_argument(
        "--concurrency",
        type=count(4096),
        metavar="N",
        help="requests in flight per server or model (default: the backend's parallel slots: "
        "OLLAMA_NUM_PARALLEL or 1 for ollama, 4 per host for openai, 1 per embedded model)",
    )
    parser.add_argument(
        "--retries", metavar="N", type=count(100), default=5, help="attempts per turn (default 5)"
    )
    parser.add_argument(
        "--backoff",
        metavar="SECONDS",
        type=seconds,
        default=1.0,
        help="first retry wait in seconds, doubled each retry, with jitter (default 1)",
    )
    timeouts = Timeouts()
    for name, default, what in (
        ("connect", timeouts.connect, "seconds"),
        ("first-token", timeouts.first_token, "seconds, includes model loading"),
        ("reply", timeouts.reply, "seconds for a whole reply"),
    ):
        parser.add_argument(
            f"--timeout-{name}", metavar="SECONDS", type=seconds, default=default,
            help=f"{what} (default {default:g})",
        )  # fmt: skip


def add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", metavar="DIR", type=Path, default=Path("transcripts"), help="transcript folder"
    )


def add_pull(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pull", action="store_true", help="pull missing models (ollama)")


def run_settings(args: argparse.Namespace, **extra: Any) -> RunSettings:
    """The engine options ``run``, ``rerun`` and ``tournament run`` share, plus ``extra``."""
    from runner.model.generate import RetryPolicy
    from runner.settings import RunSettings

    return RunSettings(
        out_dir=args.out,
        timeouts=Timeouts(
            connect=args.timeout_connect,
            first_token=args.timeout_first_token,
            reply=args.timeout_reply,
        ),
        retry=RetryPolicy(attempts=args.retries, base=args.backoff),
        concurrency=args.concurrency,
        backend=args.backend,
        hosts=tuple(args.host),
        api_key_env=args.api_key_env,
        pull=args.pull,
        **extra,
    )
