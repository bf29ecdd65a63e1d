"""Files written whole or not at all, and advisory locks: once, for every writer and reader.

Locks are POSIX advisory locks (``flock``). Where there are none (Windows) nothing is
locked and nothing reads as locked: a file still being written then cannot be told from
one whose writer was killed, and two runs of one tournament folder are not kept apart.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that it is the old file or the new one, never half of
    either: a temporary file beside it, flushed to disk, renamed over it. Raises OSError."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the file from other users
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            with contextlib.suppress(OSError):
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def lock(fd: int) -> bool:
    """Lock the open file ``fd`` for this process without waiting: False when another
    process holds it. The lock goes when ``fd`` is closed (or the process ends)."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def held(path: Path) -> bool:
    """True when another process holds a lock on ``path``."""
    if fcntl is None:  # pragma: no cover - Windows
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
