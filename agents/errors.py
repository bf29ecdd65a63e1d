"""sparring's exception tree.

It lives in ``agents`` because that is the lowest layer: backends raise these, and
the runner (which imports agents, never the other way round) raises and catches them.

    SparringError                      root; the CLI prints str(exc) as one line
    +-- ConfigError                    a scenario or option the user can fix (path, line, field)
    +-- BackendError                   anything a backend reports; ``retryable`` says what to do
        +-- BackendUnavailable         cannot connect / connection refused or reset   (retryable)
        +-- BackendTimeout             connect, first-token or whole-reply timeout    (retryable)
        +-- ServerError                HTTP 5xx, incl. 503 "server busy"              (retryable)
        |   +-- EngineCrashed          the embedded engine's worker process died      (retryable)
        +-- StreamError                mid-stream error line, dropped or cut stream   (retryable)
        +-- EngineFailed               a worker died again and again: model stopped   (final)
        +-- ModelNotFound              the server does not have the model             (final)
        +-- BadRequest                 the server refused the request as malformed   (final)
        +-- BadResponse                the server answered something we cannot read  (final)
        +-- EngineMissing              a backend's optional dependency is not installed (final)

Backends map library errors (httpx, ollama, aiohttp, llama_cpp) onto this tree at their
boundary with ``raise ... from exc`` so the runner never sees a foreign exception.
"""

from __future__ import annotations

from typing import Any


class SparringError(Exception):
    """Root of every error sparring raises on purpose."""


class ConfigError(SparringError):
    """A problem in user input, reported before any model call.

    ``problems`` holds one line per problem, each already naming file, line, column and field.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class BackendError(SparringError):
    """A backend could not produce a reply."""

    retryable: bool = False
    kind: str = "backend_error"

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        host: str | None = None,
        model: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.backend = backend
        self.host = host
        self.model = model
        self.status = status
        self.hint = hint  # what the user can do about it
        self.attempts = 1  # set by the runner when it gives up after retrying
        super().__init__(message)

    def __str__(self) -> str:
        where = " ".join(
            part
            for part in (
                self.backend,
                f"at {self.host}" if self.host else None,
                f"model {self.model!r}" if self.model else None,
            )
            if part
        )
        text = f"{where}: {self.message}" if where else self.message
        return f"{text}; {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        """The error as transcript data (the ``error`` object of an ``end`` line)."""
        return {
            "type": type(self).__name__,
            "kind": self.kind,
            "message": f"{self.message}; {self.hint}" if self.hint else self.message,
            "retryable": self.retryable,
            "backend": self.backend,
            "host": self.host,
            "model": self.model,
            "status": self.status,
            "attempts": self.attempts,
        }


class BackendUnavailable(BackendError):
    retryable = True
    kind = "unavailable"


class BackendTimeout(BackendError):
    retryable = True
    kind = "timeout"


class ServerError(BackendError):
    retryable = True
    kind = "server_error"


class StreamError(BackendError):
    retryable = True
    kind = "stream_error"


class EngineCrashed(ServerError):
    """The worker process running an embedded model died (a signal, an out-of-memory kill);
    the next request starts a new one."""

    kind = "engine_crashed"


class EngineFailed(BackendError):
    """An embedded model's worker died too many times in a row: it is not started again."""

    kind = "engine_failed"


class ModelNotFound(BackendError):
    kind = "model_not_found"


class BadRequest(BackendError):
    kind = "bad_request"


class BadResponse(BackendError):
    kind = "bad_response"


class EngineMissing(BackendError):
    kind = "engine_missing"
