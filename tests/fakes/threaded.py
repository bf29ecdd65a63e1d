"""Run an async fake server from synchronous code (subprocess tests, scripts)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def serve_in_thread(
    fake: T, start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[Any]]
) -> Iterator[T]:
    """Start ``fake`` on a daemon thread with its own event loop; stop it on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-server", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
        yield fake
    finally:
        try:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
