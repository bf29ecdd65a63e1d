"""Ports on this machine for tests that need a server, or the lack of one."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now: for a server to start on, or to find no server at."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def nowhere() -> str:
    """The URL of a port where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}"
