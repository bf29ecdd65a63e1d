"""Writing transcripts: one file per conversation, one whole line per record.

Each record goes to disk with one ``write`` of its whole line, straight to the file
(no user-space buffer), so a crash loses at most the line being written. When a write
fails (disk full, file too large), whatever part of the line reached the file is cut
away again, so every line on disk stays valid JSON. While a transcript is being
written, the writer holds an advisory lock on it: readers can tell a file still in
progress from one whose writer was killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from agents.errors import SparringError
from runner import files
from runner.transcript.records import Record


class TranscriptError(SparringError):
    """A transcript file that cannot be read or written."""


class TranscriptWriteError(TranscriptError):
    """Writing a transcript failed (disk full, permissions); ``folder`` says where."""

    def __init__(self, folder: Path, reason: str) -> None:
        self.folder = folder
        self.reason = reason
        super().__init__(f"{folder}: cannot write transcripts: {reason}")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:limit].strip("-.") or "scenario"


def _whole_lines(path: Path) -> int:
    """Bytes of ``path`` up to and including its last newline."""
    with path.open("rb") as f:
        data = f.read()
    return data.rfind(b"\n") + 1


def ensure_writable(out_dir: Path) -> None:
    """Fail before any model call if transcripts cannot be written to ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise TranscriptWriteError(out_dir, _reason(exc)) from None


class TranscriptWriter:
    """Appends records to a new file, one whole line each. Never overwrites a file."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._size = 0  # bytes of whole lines on disk
        self.closed = False
        self.failed: TranscriptWriteError | None = None

    @classmethod
    def create(cls, out_dir: Path, stem: str) -> TranscriptWriter:
        """A new file ``<stem>.jsonl`` (or ``<stem>-N.jsonl``) in ``out_dir``."""
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            for n in range(1000):
                path = out_dir / (f"{stem}.jsonl" if n == 0 else f"{stem}-{n}.jsonl")
                try:
                    # O_EXCL: fails if the file exists, even if another process just made it.
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
                except FileExistsError:
                    continue
                with contextlib.suppress(OSError):  # a file system without locks
                    files.lock(fd)
                return cls(path, fd)
        except OSError as exc:
            raise TranscriptWriteError(out_dir, _reason(exc)) from None
        raise TranscriptWriteError(out_dir, f"no free file name for {stem}")

    @classmethod
    def append(cls, path: Path) -> TranscriptWriter:
        """Add records to an existing transcript (a judge's verdicts after its end line)."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise TranscriptWriteError(path.parent, _reason(exc)) from None
        writer = cls(path, fd)
        writer._size = _whole_lines(path)
        # A line cut off by a crash would fuse with the next one: cut it away first.
        if writer._size != os.fstat(fd).st_size:
            os.ftruncate(fd, writer._size)
        return writer

    def write(self, record: Record, *, after_failure: bool = False) -> None:
        """Write one record as one line; on failure the file keeps only whole lines.

        After a failed write the writer refuses further lines (a turn missing in the middle
        would go unnoticed) unless ``after_failure``: the end line saying what went wrong.
        """
        if self.failed is not None and not after_failure:
            raise self.failed
        line = record.model_dump_json().encode("utf-8", "replace") + b"\n"
        try:
            view = memoryview(line)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            # Cut away the part of the line that made it, so the file ends with a whole line.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            self.failed = TranscriptWriteError(self.path.parent, _reason(exc))
            raise self.failed from exc
        self._size += len(line)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            os.fsync(self._fd)
        except OSError:
            pass
        finally:
            os.close(self._fd)  # also releases the lock
