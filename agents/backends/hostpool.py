"""Several servers of one model: spread requests, back off from the ones that fail.

Each request goes to the least busy host that is not backing off after a retryable
failure, so the runner's retries land on another host by themselves. A host's
credentials (``http://user:pass@host``) are kept apart from its URL: the URL is what is
printed and recorded, the credentials are only sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from agents.backends import Credentials

log = structlog.get_logger("sparring.hosts")

BACKOFF_CAP = 60.0


@dataclass(slots=True)
class Host:
    url: str  # without credentials
    credentials: Credentials | None = None
    in_flight: int = 0
    failures: int = 0  # consecutive retryable failures
    backoff_until: float = 0.0  # on the pool's clock


class HostPool:
    def __init__(self, hosts: Sequence[Host]) -> None:
        self.hosts = list(hosts)
        self._next = 0
        self.clock: Callable[[], float] = time.monotonic  # replaceable in tests

    def __len__(self) -> int:
        return len(self.hosts)

    def pick(self) -> Host:
        """The least busy healthy host, round robin among equals; else the one back soonest."""
        now = self.clock()
        n = len(self.hosts)
        order = [self.hosts[(self._next + i) % n] for i in range(n)]  # min() keeps the first
        healthy = [h for h in order if h.backoff_until <= now]
        if healthy:
            host = min(healthy, key=lambda h: h.in_flight)
        else:
            host = min(order, key=lambda h: h.backoff_until)
        self._next = (self.hosts.index(host) + 1) % n
        return host

    def failed(self, host: Host, kind: str) -> None:
        host.failures += 1
        wait = min(BACKOFF_CAP, 2.0 ** (host.failures - 1))
        host.backoff_until = self.clock() + wait
        if len(self.hosts) > 1:
            log.warning("backing off host", host=host.url, seconds=wait, error=kind)

    @staticmethod
    def succeeded(host: Host) -> None:
        host.failures, host.backoff_until = 0, 0.0
