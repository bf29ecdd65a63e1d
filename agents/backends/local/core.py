"""A loaded GGUF model and how one generation runs on it, in whichever process holds it.

By default that is an engine worker process (:mod:`agents.backends.local.worker`), so a
crash inside llama.cpp costs one request, not the run; with ``SPARRING_LOCAL_IN_PROCESS``
set, the engine's thread runs it in sparring's own process. Either way the code below is
the same and runs on one thread only: a model instance holds one KV cache and never serves
two generations at once.

A request naming a session (one agent's side of one conversation) evaluates only what its
prompt adds to that side's previous one: :mod:`agents.backends.local.context` keeps the
context between turns, and saved contexts wait in a
:class:`~agents.backends.local.states.StateStore` within the model's share of the memory
budget.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.backends.base import Final
from agents.backends.local.context import HITS, ContextError, SessionContext, Source
from agents.backends.local.states import StateStore
from agents.errors import BackendError, BadRequest, EngineMissing, ServerError

NAME = "local"
HOST = "embedded"
INSTALL_HINT = (
    "the embedded engine is not installed: pip install 'sparring[local]' "
    "(compiles llama.cpp, about 10 minutes on 2 cores the first time)"
)
_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


def outcome_of(source: Source | None, reused: int) -> str | None:
    """``hit``, ``miss`` or ``new`` for a request with a session; None without one."""
    if source is None:
        return None
    if source in HITS:
        return "hit" if reused else "miss"  # kept, but the prompt did not extend it
    return "new" if source == "new" else "miss"


@dataclass(frozen=True, slots=True)
class Spec:
    """One generation, as the process holding the model receives it."""

    id: int
    messages: list[dict[str, str]]
    kwargs: dict[str, Any]
    session: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """What a finished generation tells the engine besides its text."""

    final: Final
    source: Source | None  # how the side's context was found
    reused: int  # prompt tokens whose cells were kept, not evaluated
    sampled: int  # tokens sampled, the end-of-turn token included


class Cancelled(Exception):
    """The generation was abandoned: nobody is reading it any more."""

    def __init__(self, sampled: int) -> None:
        super().__init__("cancelled")
        self.sampled = sampled


class Failed(Exception):
    """A generation failed: ``error`` is what its reader gets, ``sampled`` what it cost."""

    def __init__(self, error: BaseException, sampled: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.sampled = sampled


@dataclass(frozen=True, slots=True)
class Fault:
    """A crash on purpose, for tests of crash isolation (``SPARRING_LOCAL_FAULT``).

    ``SIGNAL:TOKENS[:WORKERS]``: the worker process dies of SIGNAL (SIGSEGV by a real
    invalid read, SIGABRT, SIGKILL) when a generation has sampled TOKENS tokens; only in
    the first WORKERS workers of an engine when given (a worker restarted after that many
    deaths runs normally), else in every one. Honoured in worker processes only.
    """

    signal: signal.Signals
    tokens: int
    workers: int | None = None

    @classmethod
    def parse(cls, text: str) -> Fault:
        parts = text.strip().split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            sig = signal.Signals[parts[0].upper()]
            tokens, workers = int(parts[1]), int(parts[2]) if len(parts) == 3 else None
        except (KeyError, ValueError):
            raise ValueError(f"expected SIGNAL:TOKENS[:WORKERS], got {text!r}") from None
        return cls(sig, tokens, workers)

    def applies(self, generation: int) -> bool:
        return self.workers is None or generation < self.workers

    def strike(self) -> None:
        if self.signal == signal.SIGSEGV:
            ctypes.string_at(0)  # a real invalid read, as a native bug would make
        if self.signal == signal.SIGABRT:
            os.abort()
        os.kill(os.getpid(), self.signal)


@dataclass(eq=False, slots=True)
class _Run:
    spec: Spec
    stopped: Callable[[], bool]
    prompt_tokens: int | None = None
    sampled: int = 0
    last_token: int | None = None
    first_sample_at: float | None = None
    prompt_read: bool = False
    source: Source | None = None
    reused: int = 0
    swap_ms: float = 0.0


_QUIET: Any = None
# sys.stderr is process-wide: loads on several threads (in-process engines) swap it in turn.
_LOAD_LOCK = threading.Lock()


def silence(llama_cpp: Any) -> None:
    """Route llama.cpp's log lines nowhere.

    llama-cpp-python's own callback filters by level but still lets warnings through
    (Gemma 3's "using full-size SWA cache"), late and mixed into our display; failures
    reach us as exceptions anyway.
    """
    global _QUIET
    if _QUIET is not None:
        return

    @llama_cpp.llama_log_callback
    def quiet(level: int, text: bytes, user_data: Any) -> None:
        pass

    _QUIET = quiet  # ctypes needs the callback kept alive
    llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))


class Model:
    """A loaded model, its one context and its saved contexts; see the module docstring."""

    def __init__(
        self,
        path: Path,
        n_ctx: int,
        chat_format: str | None,
        *,
        threads: int,
        store: StateStore,
        fault: Fault | None = None,
    ) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise EngineMissing(INSTALL_HINT, backend=NAME, host=HOST) from exc
        silence(llama_cpp)
        try:
            # Not verbose=False: that points the process's stdout and stderr file
            # descriptors at /dev/null while loading, and two loads on two threads can leave
            # them there for good. llama.cpp's own log lines already go to the silent
            # callback; the library's Python-level prints during loading go to a buffer.
            with _LOAD_LOCK, contextlib.redirect_stderr(io.StringIO()):
                llm: Any = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=threads,
                    verbose=True,
                    chat_format=chat_format,
                )
            llm.verbose = False
        except ValueError as exc:
            raise BadRequest(
                f"llama.cpp could not load {path} (not a GGUF model it supports?): {exc}",
                backend=NAME,
                host=HOST,
            ) from exc
        self.llm: Any = llm
        self.store = store
        self.fault = fault
        self._run: _Run | None = None
        vocab = llm._model.vocab
        self._is_eog = lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        # Every token goes through Llama.sample: the one place to count tokens exactly,
        # learn the evaluated prompt length, and stop as soon as the reader has gone. A
        # job's first Llama.eval is its prompt, which its side's context evaluates.
        original_sample, original_eval = llm.sample, llm.eval

        def sample(*args: Any, **kwargs: Any) -> int:
            run = self._before_sample()
            token = int(original_sample(*args, **kwargs))
            run.sampled += 1
            run.last_token = token
            return token

        def evaluate(tokens: Sequence[int]) -> None:
            self._read_prompt(tokens, original_eval)

        llm.sample = sample  # per-instance hooks, on purpose
        llm.eval = evaluate
        self.context = SessionContext(llm, store, self, original_eval)

    @property
    def resident(self) -> str | None:
        """The session whose context is loaded."""
        return self.context.session

    def close(self) -> None:
        self.store.forget_owner(self)
        self.llm.close()

    # -- one generation ----------------------------------------------------------------

    def run(self, spec: Spec, emit: Callable[[str], None], stopped: Callable[[], bool]) -> Report:
        """Generate ``spec``'s reply, passing its text to ``emit`` as it comes.

        Raises :class:`Cancelled` once ``stopped()`` says so (checked at every token and
        between prompt pieces), and :class:`Failed` with the error for the reader.
        """
        run = self._run = _Run(spec, stopped)
        t0 = time.perf_counter()
        try:
            swapped = self.context.swap_ms
            run.source = self.context.switch_to(spec.session)
            run.swap_ms = self.context.swap_ms - swapped
            self.llm.n_tokens = 0  # the eval hook, not llama-cpp-python, decides what to reuse
            try:
                finish = self._stream(run, emit)
            finally:
                self.context.settle()  # the reply's cells belong to the side's context too
            return Report(self._final(run, t0, finish), run.source, run.reused, run.sampled)
        except _Stop:
            raise Cancelled(run.sampled) from None
        except BackendError as exc:
            raise Failed(exc, run.sampled) from exc
        except ValueError as exc:  # llama-cpp-python's word for a request it cannot serve
            raise Failed(_bad_request(exc), run.sampled) from exc
        except RuntimeError as exc:  # llama.cpp itself failed (llama_decode returned ...)
            self.context.drop()  # its cells are in no known state
            what = "keep a conversation's context" if isinstance(exc, ContextError) else "run"
            error = ServerError(f"llama.cpp failed to {what}: {exc}", backend=NAME, host=HOST)
            error.__cause__ = exc
            raise Failed(error, run.sampled) from exc
        finally:
            self._run = None

    def _stream(self, run: _Run, emit: Callable[[str], None]) -> str | None:
        stream = self.llm.create_chat_completion(
            messages=run.spec.messages, stream=True, **run.spec.kwargs
        )
        finish: str | None = None
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content")
                if text:
                    emit(text)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                if run.stopped():
                    raise _Stop
        finally:
            stream.close()
        return finish

    def _final(self, run: _Run, t0: float, finish: str | None) -> Final:
        end = time.perf_counter()
        completion = run.sampled
        if run.last_token is not None and self._is_eog(run.last_token):
            completion -= 1  # the end-of-turn token is sampled but not part of the reply
        first = run.first_sample_at or end
        server = {
            "total_ms": (end - t0) * 1000,
            "prompt_eval_ms": (first - t0) * 1000,
            "eval_ms": (end - first) * 1000,
        }
        if run.source is not None:
            server["context_ms"] = run.swap_ms
            server["prompt_cached_tokens"] = float(run.reused)
        return Final(
            prompt_tokens=run.prompt_tokens,
            completion_tokens=completion,
            done_reason=finish or "stop",
            server=server,
            host=HOST,
        )

    # -- hooks, called by llama-cpp-python -------------------------------------------------

    def _before_sample(self) -> _Run:
        run = self._run
        if run is None:  # llama-cpp-python sampling outside a job: not ours to count
            run = _Run(Spec(-1, [], {}), lambda: False)
        if run.stopped():
            raise _Stop
        if run.prompt_tokens is None:
            run.prompt_tokens = int(self.llm.n_tokens)
            run.first_sample_at = time.perf_counter()
        if self.fault is not None and run.sampled >= self.fault.tokens:
            self.fault.strike()
        return run

    def _read_prompt(
        self, tokens: Sequence[int], evaluate: Callable[[Sequence[int]], None]
    ) -> None:
        """Evaluate a job's prompt (its first eval call) through its side's context."""
        run = self._run
        if run is None or run.prompt_read:
            evaluate(tokens)
            return
        run.prompt_read = True
        try:
            run.reused = self.context.evaluate(tokens, run.stopped)
        except InterruptedError:
            raise _Stop from None


class _Stop(Exception):
    """Raised inside generation to abandon it."""


def _bad_request(exc: ValueError) -> BadRequest:
    match = _OVERFLOW.search(str(exc))
    if match:
        message = (
            f"the prompt is {match[1]} tokens, more than the context window "
            f"(num_ctx={match[2]}); raise num_ctx or shorten the conversation"
        )
    else:
        message = str(exc)
    error = BadRequest(message, backend=NAME, host=HOST)
    error.__cause__ = exc
    return error


@dataclass(slots=True)
class Counters:
    """What an engine served, over its life (its workers' restarts included)."""

    jobs: int = 0
    cancelled: int = 0
    tokens: int = 0  # tokens of finished replies
    sampled: int = 0  # every token sampled, cancelled and failed jobs' included
    reused: int = 0
    evaluated: int = 0
    deaths: int = 0  # worker processes that died
    outcomes: dict[str, int] = field(default_factory=dict)

    def finished(self, report: Report) -> None:
        self.sampled += report.sampled
        self.tokens += report.final.completion_tokens or 0
        outcome = outcome_of(report.source, report.reused)
        if outcome is not None:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.reused += report.reused
        self.evaluated += (report.final.prompt_tokens or 0) - report.reused
