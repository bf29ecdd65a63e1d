"""What a fake server can be scripted to do instead of answering normally.

One set of faults with one meaning for every fake (ollama's, the OpenAI-compatible one),
each fake sending it in its own wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Error:
    """Answer with this HTTP status before streaming starts: ``message`` in the server's own
    error shape, or ``body`` (a dict, or raw text) instead of it."""

    status: int
    message: str = "fake error"
    body: Any = None


@dataclass(frozen=True, slots=True)
class MidStreamError:
    """HTTP 200, ``after_tokens`` tokens, then the server's error line or event."""

    after_tokens: int = 0
    message: str = "an error was encountered while running the model: unexpected EOF"


@dataclass(frozen=True, slots=True)
class Drop:
    """HTTP 200, ``after_tokens`` tokens, then the connection is cut mid-body."""

    after_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Stall:
    """After ``after_tokens`` tokens (0: before the reply starts), send nothing for
    ``seconds``, then finish normally."""

    seconds: float
    after_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Garbage:
    """HTTP 200, ``after_tokens`` tokens, then a line that is not JSON (a confused proxy)."""

    after_tokens: int = 0
    line: str = "<html><body>502 Bad Gateway</body></html>"


Action = str | Error | MidStreamError | Drop | Stall | Garbage
Cut = MidStreamError | Drop | Stall | Garbage
