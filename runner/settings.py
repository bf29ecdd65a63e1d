"""What a run is told from outside its scenarios: the CLI's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agents.backends.base import Timeouts
from runner.model.generate import RetryPolicy


@dataclass(frozen=True, slots=True)
class RunSettings:
    out_dir: Path = Path("transcripts")
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int | None = None  # per connection key; None: the backend's default
    # Conversations alive at once (each holds an open transcript); None: enough to keep
    # every server's slots busy (see runner.run.orchestrator.default_max_conversations).
    max_conversations: int | None = None
    backend: str | None = None  # --backend; None: the scenario's, else auto
    hosts: tuple[str, ...] = ()  # --host; overrides the scenario's and agents' hosts
    api_key_env: str | None = None
    pull: bool = False
