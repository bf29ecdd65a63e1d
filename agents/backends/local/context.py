"""The loaded model's one context: whose conversation side it holds, and how far.

A conversation side's prompt only grows at its end, so its next turn needs only its new
tokens evaluated on top of the context its last turn left, reply included. This class
keeps that context loaded between turns, saves it to the
:class:`~agents.backends.local.states.StateStore` when another side's turn comes, restores
it when the side speaks again, and evaluates a prompt in the pieces
:mod:`agents.backends.local.chunks` defines, from the last piece the context already holds.

Replies stay exactly what a cold read gives, whatever was kept, swapped or evicted:
every token's cells come from the same piece evaluated on the same earlier cells.
Sliding-window models (Gemma 3) need more care: the cells' places in the cache also change
the numbers, and a saved context keeps only the window. There each piece is evaluated on a
context just saved and restored (compacted the same way on every path), a restored context
is never cut back below the point it was saved at, and earlier replies are read again in
one piece rather than kept as generated (generation does not compact between tokens).
Runs on the model's worker thread only.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal

from agents.backends.local.chunks import generation_prompt, piece_starts, reuse_point
from agents.backends.local.states import SavedState, StateStore

# How a turn found its side's context: kept in the model, restored from the store, dropped
# (evicted from the store, or lost to an error), or never seen.
Source = Literal["loaded", "restored", "evicted", "new"]
HITS: frozenset[Source] = frozenset({"loaded", "restored"})


class ContextError(RuntimeError):
    """llama.cpp refused to save or restore a context."""


class _Cells:
    """The KV cells of the context's one sequence, as llama.cpp's C API handles them."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp

        self._lib, self._ctx = llama_cpp, llm.ctx
        self._memory = llama_cpp.llama_get_memory(llm.ctx)

    def clear(self) -> None:
        self._lib.llama_memory_clear(self._memory, True)

    def cut(self, end: int) -> None:
        self._lib.llama_memory_seq_rm(self._memory, 0, end, -1)

    def save(self) -> bytearray:
        size = self._lib.llama_state_seq_get_size(self._ctx, 0)
        data = bytearray(size)
        view = (ctypes.c_uint8 * size).from_buffer(data)
        if self._lib.llama_state_seq_get_data(self._ctx, view, size, 0) != size:
            raise ContextError("llama.cpp could not save a conversation's context")
        return data

    def load(self, data: bytearray) -> None:
        self.clear()
        view = (ctypes.c_uint8 * len(data)).from_buffer(data)
        if self._lib.llama_state_seq_set_data(self._ctx, view, len(data), 0) == 0:
            raise ContextError("llama.cpp could not restore a conversation's context")


def _traits(llm: Any) -> tuple[bool, bool, Callable[[int], bool]]:
    """Whether the model has sliding-window layers, whether a context can be cut back
    (not on recurrent or hybrid models: they always read cold), and its control tokens."""
    import llama_cpp

    model, vocab = llm.model, llm._model.vocab
    sliding = llama_cpp.llama_model_n_swa(model) > 0
    reusable = not (
        llama_cpp.llama_model_is_recurrent(model) or llama_cpp.llama_model_is_hybrid(model)
    )
    control = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL

    def is_control(token: int) -> bool:
        return bool(llama_cpp.llama_vocab_get_attr(vocab, token) & control)

    return sliding, reusable, is_control


class SessionContext:
    """See the module docstring."""

    def __init__(
        self,
        llm: Any,
        store: StateStore,
        owner: Hashable,
        evaluate: Callable[[Sequence[int]], None],
    ) -> None:
        self.llm = llm
        self.store = store
        self.owner = owner
        self._evaluate = evaluate  # Llama.eval itself: n_batch splits, token bookkeeping
        self._cells = _Cells(llm)
        self.sliding, self.reusable, self._is_control = _traits(llm)
        self.keeps_replies = not self.sliding  # see the module docstring
        self.session: str | None = None
        self.tokens: list[int] = []  # tokens whose cells are complete, in evaluation order
        self.starts: list[int] = []  # the starts of the pieces those were evaluated in
        self._reading = False  # a prompt's pieces are being evaluated
        self.floor = 0  # a sliding-window context cannot be cut back below this
        self._compacted_at: int | None = None  # nothing evaluated since compacting here
        self.swap_ms = 0.0

    # -- switching sides -------------------------------------------------------------

    def switch_to(self, session: str | None) -> Source | None:
        """Load ``session``'s context (saving the current one); None without a session."""
        if session is not None and session == self.session and self.reusable:
            return "loaded" if self.tokens else "new"
        t0 = time.perf_counter()
        try:
            try:
                self._save_current()
            except ContextError:  # not kept: that side re-reads next time
                self.drop()
            self.clear()
            if session is None or not self.reusable:
                return None
            state = self.store.take(self.owner, session)
            self.session = session
            if state is None:
                return "evicted" if self.store.was_dropped(self.owner, session) else "new"
            try:
                self._restore(state)
            except ContextError:
                self.clear()
                self.session = session
                return "evicted"
            return "restored"
        finally:
            self.swap_ms += (time.perf_counter() - t0) * 1000

    def drop(self) -> None:
        """Forget the loaded context as lost: its side's next turn is a miss."""
        if self.session is not None:
            self.store.drop(self.owner, self.session)
        self.clear()

    def clear(self) -> None:
        """Forget the loaded context (its cells, too)."""
        self._cells.clear()
        self.llm.n_tokens = 0
        self.session, self.tokens, self.starts, self.floor = None, [], [], 0
        self._compacted_at = None
        self._reading = False

    def _save_current(self) -> None:
        if self.session is None or not self.tokens:
            return
        if self.sliding:
            # Restored, it cannot be cut back: keep it up to the boundary the next prompt
            # shares, the start of the last piece (the final request for a reply). Not
            # below the floor, though: a context restored and left before its next piece
            # (a request stopped early, or one llama-cpp-python refused) keeps what it holds.
            if self.starts[-1] >= self.floor:
                self._cut(self.starts[-1])
            if not self.tokens:
                self.store.drop(self.owner, self.session)  # a miss next time, not a new side
                return
        state = SavedState(tuple(self.tokens), tuple(self.starts), self._cells.save())
        self.store.put(self.owner, self.session, state)

    def _restore(self, state: SavedState) -> None:
        self._cells.load(state.data)
        self.tokens, self.starts = list(state.tokens), list(state.starts)
        self._sync(len(self.tokens))
        self.floor = len(self.tokens) if self.sliding else 0
        self._compacted_at = len(self.tokens)

    def _cut(self, end: int) -> None:
        """Drop the cells from ``end`` on (generated tokens, unfinished pieces)."""
        self._cells.cut(end)
        self.tokens, self.starts = self.tokens[:end], [s for s in self.starts if s < end]
        self._sync(end)

    def _sync(self, n: int) -> None:
        # llama-cpp-python's own record of what the context holds, for its next eval.
        self.llm.input_ids[:n] = self.tokens[:n]
        self.llm.n_tokens = n

    def _compact(self) -> None:
        """Save and restore the context: its cells sit where any other path puts them."""
        n = len(self.tokens)
        if self._compacted_at == n:
            return  # just restored or compacted: nothing was evaluated since
        self._cells.load(self._cells.save())
        self._sync(n)
        self.floor = self._compacted_at = n

    # -- evaluating a prompt -----------------------------------------------------------

    def evaluate(self, prompt: Sequence[int], stopped: Callable[[], bool]) -> int:
        """Evaluate ``prompt`` on this context, reusing what it holds; returns tokens reused.

        ``stopped`` is checked between pieces; when it says so, evaluation ends with
        :class:`InterruptedError` and the context keeps the pieces already done.
        """
        prompt = list(prompt)
        if self.session is None:  # no promise that prompts extend each other: one piece
            self.clear()
            self._evaluate(prompt)
            return 0
        marker = generation_prompt(prompt, self._is_control)
        starts = piece_starts(prompt, marker, self._is_control if self.keeps_replies else None)
        reuse = reuse_point(self.tokens, self.starts, self.floor, prompt, starts)
        if reuse == 0:
            session = self.session
            self.clear()
            self.session = session
        self._cut(reuse)
        self.tokens, self.starts = prompt[:reuse], [s for s in starts if s < reuse]
        self._reading = True
        ends = [*starts[1:], len(prompt)]
        for start, end in zip(starts, ends, strict=True):
            if end <= reuse:
                continue
            if stopped():
                raise InterruptedError
            if self.sliding and start > 0:
                self._compact()
            self._compacted_at = None
            self._evaluate(prompt[start:end])
            self.tokens = prompt[:end]
            self.starts = [s for s in starts if s < end]
        self._reading = False
        return reuse

    def settle(self) -> None:
        """After a reply: keep the tokens generation evaluated, one piece each, as it did."""
        if self.session is None or self._reading or not self.keeps_replies:
            return
        n = int(self.llm.n_tokens)
        done = len(self.tokens)
        if n > done:
            self.starts.extend(range(done, n))
            self.tokens.extend(int(t) for t in self.llm.input_ids[done:n])
