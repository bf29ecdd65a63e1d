"""Where an embedded model runs: a worker process of its own (the default), or in-process.

A crash inside llama.cpp (a segmentation fault, an abort, an out-of-memory kill) ends
the process it happens in. So each loaded model runs in a worker process, as ollama runs
each model in a runner: sparring's process only queues requests and relays text, and a
worker's death costs the request it was serving (a retryable
:class:`~agents.errors.EngineCrashed` naming the signal), not the run.

Both ends of the pipe are here. The parent's :class:`WorkerProcess` starts
``python -m agents.backends.local.worker FD`` with one end of a socket pair as FD and
speaks to it in pickled tuples (trusted: both ends are this module):

    parent -> worker   ("load", Load) first, then ("job", Spec), ("stop", id),
                       ("budget", bytes), ("close",)
    worker -> parent   ("loaded", load_ms) | ("failed", error) once, then per job:
                       ("delta", id, text)... and one of ("done", id, Report, resident),
                       ("cancelled", id, sampled, resident),
                       ("failed", id, error, sampled, resident), ("bug", id, text, sampled)

The worker reads the pipe on a thread of its own, so a stop reaches a generation at its
next token. A worker whose parent has gone sees the pipe close and exits.
:class:`InProcess` runs the same :class:`~agents.backends.local.core.Model` on the
engine's own thread instead (``SPARRING_LOCAL_IN_PROCESS=1``: for a debugger, and as the
benchmark's baseline); a native crash there ends sparring.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from agents.backends.local.core import (
    HOST,
    NAME,
    Cancelled,
    Failed,
    Fault,
    Model,
    Report,
    Spec,
)
from agents.backends.local.states import StateStore
from agents.errors import BackendError, EngineCrashed

FAULT_ENV = "SPARRING_LOCAL_FAULT"
# A worker told to stop that says nothing for this long is hung: it is killed.
STOP_GRACE = 10.0
# How long a closing worker may take to free its model before it is killed.
CLOSE_GRACE = 10.0
STDERR_LINES = 20


@dataclass(frozen=True, slots=True)
class Load:
    path: str
    n_ctx: int
    chat_format: str | None
    threads: int
    budget: int  # bytes of saved contexts this model may keep
    generation: int = 0  # workers of this engine started before this one
    fault: str | None = None  # SPARRING_LOCAL_FAULT, for tests of crash isolation


class Host(Protocol):
    """Where a loaded model lives, as the engine's thread drives it."""

    @property
    def resident(self) -> str | None:
        """The session whose context is loaded."""
        ...

    def serve(self, spec: Spec, emit: Any, stopped: Any) -> Report:
        """Run one generation; raises Cancelled, Failed or EngineCrashed."""
        ...

    def stop(self, job_id: int) -> None:
        """Ask the generation ``job_id`` to stop (any thread)."""
        ...

    def set_budget(self, budget: int) -> None: ...

    def close(self) -> None: ...


class InProcess:
    """The model in this process, on the calling thread."""

    def __init__(self, load: Load) -> None:
        self._model = Model(
            Path(load.path),
            load.n_ctx,
            load.chat_format,
            threads=load.threads,
            store=StateStore(load.budget),
        )

    @property
    def resident(self) -> str | None:
        return self._model.resident

    def serve(self, spec: Spec, emit: Any, stopped: Any) -> Report:
        return self._model.run(spec, emit, stopped)

    def stop(self, job_id: int) -> None:
        pass  # ``stopped`` is read directly at every token

    def set_budget(self, budget: int) -> None:
        self._model.store.budget = budget

    def close(self) -> None:
        self._model.close()


@dataclass(frozen=True, slots=True)
class Death:
    """How a worker process ended."""

    returncode: int | None
    last_words: str  # its last line on stderr, if any

    @property
    def cause(self) -> str:
        code = self.returncode
        if code is None:
            return "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "an unknown signal"
            why = " (often the out-of-memory killer)" if -code == signal.SIGKILL else ""
            return f"died of {name} (signal {-code}){why}"
        return f"exited with status {code}"


class WorkerProcess:
    """The parent's end of one worker process; see the module docstring."""

    def __init__(self) -> None:
        """Start a worker; it imports the engine, then waits for :meth:`load`."""
        self.model_path = ""
        ours, theirs = socket.socketpair()
        self._conn = Connection(ours.detach())
        self._send_lock = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        package_root = str(Path(__file__).resolve().parents[3])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        fd = theirs.fileno()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "agents.backends.local.worker", str(fd)],
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # Ctrl-C goes to sparring, which stops it in order
            )
        finally:
            theirs.close()
        self._reader = threading.Thread(
            target=self._read_stderr, name="sparring-local-stderr", daemon=True
        )
        self._reader.start()
        self.resident: str | None = None
        self.last_death: Death | None = None
        self._stopping: dict[int, float] = {}

    def load(self, load: Load) -> float:
        """Load the model; its time in ms. Raises the load's error, or EngineCrashed."""
        self.model_path = load.path
        self._send(("load", load))
        return self.wait_loaded()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def wait_loaded(self) -> float:
        message = self._recv(None)
        if message[0] == "loaded":
            return float(message[1])
        if message[0] == "failed":
            raise message[1]
        raise RuntimeError(f"engine worker: unexpected {message[0]!r} while loading")

    def serve(self, spec: Spec, emit: Any, stopped: Any) -> Report:
        self._send(("job", spec))
        while True:
            message = self._recv(spec.id)
            kind = message[0]
            if kind == "delta":
                emit(message[2])
                continue
            self._stopping.pop(spec.id, None)
            if kind == "done":
                self.resident = message[3]
                report: Report = message[2]
                return report
            if kind == "cancelled":
                self.resident = message[3]
                raise Cancelled(message[2])
            if kind == "failed":
                self.resident = message[4]
                raise Failed(message[2], message[3])
            if kind == "bug":
                raise Failed(RuntimeError(f"engine worker: {message[2]}"), message[3])
            raise RuntimeError(f"engine worker: unexpected {kind!r}")

    def stop(self, job_id: int) -> None:
        self._stopping.setdefault(job_id, time.monotonic())
        try:
            self._send(("stop", job_id))
        except EngineCrashed:
            pass  # it is gone: the reader finds out

    def set_budget(self, budget: int) -> None:
        try:
            self._send(("budget", budget))
        except EngineCrashed:
            pass

    def alive(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        """Let the worker free its model and exit; kill it if it does not."""
        try:
            self._send(("close",))
            self._proc.wait(CLOSE_GRACE)
        except (EngineCrashed, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        finally:
            self._conn.close()
            self._reader.join(1.0)

    def kill(self) -> Death:
        self._proc.kill()
        return self.death()

    def death(self) -> Death:
        """Wait for the worker to end (it has, or is about to) and say how it did."""
        try:
            code = self._proc.wait(CLOSE_GRACE)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._conn.close()
        self._reader.join(1.0)
        last = next((line for line in reversed(self._stderr) if line.strip()), "")
        self.last_death = Death(code, last.strip()[:200])
        return self.last_death

    # -- the pipe ----------------------------------------------------------------------

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            try:
                self._conn.send(message)
            except OSError as exc:  # the worker has gone
                raise self._gone() from exc

    def _recv(self, job_id: int | None) -> tuple[Any, ...]:
        while True:
            try:
                if self._conn.poll(1.0):
                    message: tuple[Any, ...] = self._conn.recv()
                    return message
            except (EOFError, OSError) as exc:
                raise self._gone() from exc
            asked = self._stopping.get(job_id) if job_id is not None else None
            if asked is not None and time.monotonic() - asked > STOP_GRACE:
                raise self._gone(self.kill())
            if not self.alive():  # dead, yet its end of the pipe lingers (a grandchild?)
                raise self._gone()

    def _gone(self, death: Death | None = None) -> EngineCrashed:
        death = death or self.death()
        return EngineCrashed(
            f"the engine worker {death.cause}", backend=NAME, host=HOST, model=self.model_path
        )

    def _read_stderr(self) -> None:
        stream = self._proc.stderr
        if stream is None:
            return
        for raw in stream:
            self._stderr.append(raw.decode("utf-8", errors="replace"))
        stream.close()


# -- the worker process ------------------------------------------------------------------


class _Control:
    """The worker's reader of the pipe: jobs for the main thread, stops and budgets at once."""

    def __init__(self, conn: Connection, store: StateStore) -> None:
        self.conn = conn
        self.store = store
        self.jobs: collections.deque[Spec | None] = collections.deque()
        self.ready = threading.Condition()
        self.stopped: set[int] = set()
        self.current: int | None = None  # the job the main thread runs
        thread = threading.Thread(target=self._read, name="sparring-worker-pipe", daemon=True)
        thread.start()

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):  # the parent has gone, or closed us
                message = ("close",)
            kind = message[0]
            if kind == "stop":
                self.stopped.add(message[1])
            elif kind == "budget":
                self.store.budget = message[1]
            with self.ready:
                if kind == "job":
                    self.jobs.append(message[1])
                elif kind == "close":
                    if self.current is not None:
                        self.stopped.add(self.current)
                    self.jobs.append(None)
                self.ready.notify()
            if kind == "close":
                return

    def next_job(self) -> Spec | None:
        with self.ready:
            while not self.jobs:
                self.ready.wait()
            return self.jobs.popleft()


def _serve(conn: Connection) -> None:
    # The engine's import first, while the parent decides what to load (a spare worker
    # waits here ready); a failed import is reported when the load comes.
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pass
    message = conn.recv()
    if message[0] != "load":  # closed before it was needed
        return
    load: Load = message[1]
    store = StateStore(load.budget)
    fault = Fault.parse(load.fault) if load.fault else None
    t0 = time.perf_counter()
    try:
        model = Model(
            Path(load.path),
            load.n_ctx,
            load.chat_format,
            threads=load.threads,
            store=store,
            fault=fault if fault is not None and fault.applies(load.generation) else None,
        )
    except BackendError as exc:
        exc.__cause__ = None  # the engine's own exception does not cross the pipe
        conn.send(("failed", exc))
        return
    conn.send(("loaded", (time.perf_counter() - t0) * 1000))
    control = _Control(conn, store)
    try:
        while (spec := control.next_job()) is not None:
            _run(conn, model, spec, control)
    except OSError:  # the parent has gone: nobody to answer
        pass
    finally:
        model.close()


def _run(conn: Connection, model: Model, spec: Spec, control: _Control) -> None:
    def emit(text: str) -> None:
        conn.send(("delta", spec.id, text))

    def stopped() -> bool:
        return spec.id in control.stopped

    control.current = spec.id
    try:
        report = model.run(spec, emit, stopped)
        conn.send(("done", spec.id, report, model.resident))
    except Cancelled as exc:
        conn.send(("cancelled", spec.id, exc.sampled, model.resident))
    except Failed as exc:
        if isinstance(exc.error, BackendError):
            exc.error.__cause__ = None
            conn.send(("failed", spec.id, exc.error, exc.sampled, model.resident))
        else:
            conn.send(("bug", spec.id, "".join(traceback.format_exception(exc.error)), 0))
    except Exception as exc:  # a bug: the parent raises it
        conn.send(("bug", spec.id, "".join(traceback.format_exception(exc)), 0))
    finally:
        control.current = None
        control.stopped.discard(spec.id)


def main(argv: list[str]) -> int:
    conn = Connection(int(argv[0]))
    # Ctrl-C is sparring's to handle: it stops this worker through the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _serve(conn)
    except (EOFError, OSError):
        return 0  # the parent went away
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
