"""The thin interface every backend implements.

A backend does I/O only: it turns a :class:`ChatRequest` into a stream of :class:`Delta`
events and, when the server said the reply is complete, one :class:`Final`. A stream that
ends without a Final was cut short; the runner (one layer, :mod:`runner.model.generate`) turns
that into a retryable error. Retries, timeouts, concurrency limits, timing and logging
live in the runner, once, for every backend. Library errors are mapped onto
:mod:`agents.errors` inside the backend.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict, runtime_checkable

if TYPE_CHECKING:  # imported when first needed: an engine worker process never needs it
    from agents.backends.config import GenerateConfig

Role = Literal["system", "user", "assistant"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text from a server with lone surrogates (valid in JSON's ``\\ud800``, not in UTF-8)
    replaced by U+FFFD, as undecodable bytes already are."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


class Message(TypedDict):
    role: Role
    content: str


def _default_config() -> GenerateConfig:
    from agents.backends.config import GenerateConfig

    return GenerateConfig()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: Sequence[Message]
    config: GenerateConfig = field(default_factory=_default_config)
    # Names one agent's side of one conversation (its requests, its retries).
    session: str | None = None
    # Whether each request of the session extends the one before (histories are
    # append-only), so a backend may keep per-session state such as a KV cache. Not under a
    # history window, which drops the oldest turns.
    extends: bool = True


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of generated text."""

    text: str


@dataclass(frozen=True, slots=True)
class Final:
    """The last event of a reply: what the server reports about it."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    done_reason: str | None = None
    # Server-side timings in milliseconds where the server reports them
    # (ollama: total, load, prompt_eval, eval).
    server: dict[str, float] = field(default_factory=dict)
    # Which host served the reply, for backends that spread over several.
    host: str | None = None


ChatEvent = Delta | Final


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    size: int | None = None  # bytes
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model a server holds in memory now, as it says (ollama's /api/ps)."""

    name: str
    size: int | None = None  # bytes in memory
    expires_at: datetime | None = None  # when it unloads unless used again


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``connect`` is the transport's; the runner enforces the other two."""

    connect: float = 10.0
    # Includes the server loading the model and evaluating the prompt: generous by default.
    first_token: float = 300.0
    reply: float = 900.0


@dataclass(frozen=True, slots=True)
class BackendSettings:
    """How to build a backend: everything comes from the CLI or the scenario."""

    hosts: tuple[str, ...] = ()  # empty: the backend's own default (e.g. OLLAMA_HOST)
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Name of an environment variable holding an API key (openai). Never the key itself.
    api_key_env: str | None = None


ProgressCallback = Callable[[str, int | None, int | None], None]
"""``progress(status, completed, total)`` during a pull."""


@runtime_checkable
class Backend(Protocol):
    name: str  # "ollama", "local", "openai", "scripted"
    host: str | None  # where it talks to, for messages and transcripts (no credentials)
    can_pull: bool  # pull() can fetch a missing model
    supported_options: frozenset[str]  # GenerateConfig fields it sends; others are ignored
    # Conversations kept alive per request slot: 2 lets a second one be ready to send while
    # the first one's reply is being written and judged, so a server never waits on the
    # runner; 1 where a conversation holds state on its slot (the embedded engine's cache).
    conversations_per_slot: int

    def chat(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Stream one reply: any number of Delta, then one Final once the reply is complete.

        Raises :class:`agents.errors.BackendError` subclasses only.
        """
        ...

    def connection_key(self, model: str) -> str:
        """Requests sharing a key share one concurrency limit (a server, or a loaded model)."""
        ...

    def default_concurrency(self) -> int:
        """How many requests per connection key the backend serves at once by default."""
        ...

    async def list_models(self) -> list[ModelInfo]:
        """What the backend can serve, for ``sparring models``."""
        ...

    async def find_model(self, name: str) -> ModelInfo:
        """The model ``name`` refers to (aliases resolved), or ModelNotFound with a hint."""
        ...

    async def pull(self, model: str, progress: ProgressCallback) -> None:
        """Fetch a missing model, where the backend can (``can_pull``); else ModelNotFound."""
        ...

    async def release(self, model: str) -> None:
        """Free ``model``'s memory now (ollama: unload it; embedded: free the engine); a
        later request loads it again. Where a backend cannot, it does nothing."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads and loaded models."""
        ...


@runtime_checkable
class ShowsLoaded(Protocol):
    """A backend whose server says which models it holds, and loads one when asked (ollama);
    a tournament learns from it how many models the server keeps loaded at once."""

    async def loaded_models(self) -> list[LoadedModel]:
        """The models the server holds now."""
        ...

    async def load_model(self, model: str, config: GenerateConfig) -> None:
        """Load ``model`` with ``config``'s load-time options and keep-alive; returns once
        it is loaded (the server may evict another to make room)."""
        ...
