"""Where a prompt is cut into pieces for evaluation, and how much of a kept context is reused.

llama.cpp's numbers for a token depend on the batch it was evaluated in (and, on
sliding-window models, on where its cells sit in the cache), so a context kept from the
previous turn only gives the same reply as a cold read if both were evaluated in the same
pieces. The pieces are therefore a function of the prompt's tokens alone. A piece starts
wherever the generation prompt (the tokens a chat template appends to ask for a reply,
such as ``<|im_start|>assistant\\n``) occurs: at each of the agent's earlier replies and at
the final request for a new one. Where replies are *read as generated*, each token of an
earlier reply (up to the control token that ends it) is a piece of its own, exactly as
generation evaluated it, so the context a reply left behind is reused whole; the rest of
the exchange is one piece. A conversation side's prompt only grows at its end, so the
pieces of one turn are the pieces of the next, and a kept context is reused up to the last
piece boundary both share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# A generation prompt longer than this is not one (a template without control tokens).
MAX_GENERATION_PROMPT = 16


# A role name between two control tokens is at most this many tokens ("assistant").
MAX_ROLE = 3


def generation_prompt(tokens: Sequence[int], is_control: Callable[[int], bool]) -> list[int]:
    """The prompt's tail from its last control token: the chat template's request for a reply.

    Where that control token closes a header (Llama 3's ``<|start_header_id|>assistant
    <|end_header_id|>``, Phi-4's ``<|im_sep|>``), the tail from it ends every role's header
    alike, so the tail starts at the control token before the role name instead. Empty when
    the prompt has no control token near its end, which leaves the whole prompt as one piece.
    """
    lowest = max(0, len(tokens) - MAX_GENERATION_PROMPT)
    controls = [at for at in range(len(tokens) - 1, lowest - 1, -1) if is_control(tokens[at])]
    if not controls:
        return []
    at = controls[0]
    if len(tokens) - at <= 2 and len(controls) > 1 and 1 <= at - controls[1] - 1 <= MAX_ROLE:
        at = controls[1]
    return list(tokens[at:])


def piece_starts(
    tokens: Sequence[int],
    marker: Sequence[int],
    reply_end: Callable[[int], bool] | None = None,
) -> list[int]:
    """Where each evaluation piece starts: 0, and every occurrence of ``marker``.

    With ``reply_end`` (true for the control tokens that close a reply), replies are read as
    generated: after each occurrence of ``marker`` but the last, every token up to the
    closing one starts a piece, and so does the closing token.
    """
    starts = [0]
    if not marker:
        return starts
    first, width = marker[0], len(marker)
    target = list(marker)
    found = [
        at
        for at in range(1, len(tokens) - width + 1)
        if tokens[at] == first and list(tokens[at : at + width]) == target
    ]
    for at in found:
        if at > starts[-1]:
            starts.append(at)
        if reply_end is None or at == found[-1]:
            continue
        reply = at + width
        while reply < len(tokens) and not reply_end(tokens[reply]):
            starts.append(reply)
            reply += 1
        if reply < len(tokens):
            starts.append(reply)
    return starts


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def reuse_point(
    kept: Sequence[int],
    kept_starts: Sequence[int],
    floor: int,
    prompt: Sequence[int],
    prompt_starts: Sequence[int],
) -> int:
    """How many tokens of a kept context the prompt can reuse: a piece boundary, or 0.

    ``kept`` holds the tokens whose evaluation is complete, ``kept_starts`` the starts of
    the pieces they were evaluated in. The answer is the last boundary both share, every
    earlier piece being the same in both (so each reused token was evaluated in the very
    piece a cold read makes), within the tokens both have in common, not below ``floor`` (a
    restored sliding-window context cannot be cut back further than the point it was saved
    at) and short of the whole prompt (at least one piece must be evaluated to get logits).
    """
    shared = min(common_prefix(kept, prompt), len(prompt) - 1)
    boundaries = [*kept_starts, len(kept)] if kept_starts[-1:] != [len(kept)] else kept_starts
    best = 0
    for ours, theirs in zip(boundaries, prompt_starts, strict=False):
        if ours != theirs or ours > shared:
            break
        if ours >= floor:
            best = ours
    return best if best >= floor else 0
