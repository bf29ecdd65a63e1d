"""Evaluation pieces and reuse points, on plain token lists."""

from __future__ import annotations

from agents.backends.local.chunks import (
    common_prefix,
    generation_prompt,
    piece_starts,
    reuse_point,
)

START, ASSISTANT, NL, END, USER = 1, 50, 10, 2, 60  # token ids of a chatml-like template
G = [START, ASSISTANT, NL]  # what the template appends to ask for a reply


def turn(role: int, *content: int) -> list[int]:
    return [START, role, NL, *content, END, NL]


def control(token: int) -> bool:
    return token in (START, END)


def prompt(*turns: list[int]) -> list[int]:
    return [token for t in turns for token in t] + G


FIRST = prompt(turn(USER, 100, 101))
SECOND = prompt(turn(USER, 100, 101), turn(ASSISTANT, 200, 201, 202), turn(USER, 102))
THIRD = prompt(
    turn(USER, 100, 101),
    turn(ASSISTANT, 200, 201, 202),
    turn(USER, 102),
    turn(ASSISTANT, 203),
    turn(USER, 103, 104),
)


def test_generation_prompt_is_the_tail_from_the_last_control_token() -> None:
    assert generation_prompt(SECOND, control) == G
    assert generation_prompt([5, 6, 7], control) == []
    # A control token too far from the end is not a generation prompt.
    assert generation_prompt([START, *range(100, 120)], control) == []


def test_pieces_start_at_each_reply_and_at_the_final_request() -> None:
    assert piece_starts(FIRST, G) == [0, len(FIRST) - 3]
    starts = piece_starts(THIRD, G)
    assert starts == [0, 7, len(SECOND) - 3, len(THIRD) - 3]
    assert THIRD[7:10] == G
    assert piece_starts(THIRD, []) == [0]


def test_an_extended_prompt_keeps_the_earlier_pieces() -> None:
    second, third = piece_starts(SECOND, G), piece_starts(THIRD, G)
    assert third[: len(second)] == second


def test_reuse_from_the_last_shared_piece_start() -> None:
    kept, kept_starts = SECOND, piece_starts(SECOND, G)
    starts = piece_starts(THIRD, G)
    # The previous turn's final request starts a piece in both: everything before it is kept.
    assert reuse_point(kept, kept_starts, 0, THIRD, starts) == len(SECOND) - 3


def test_the_same_prompt_again_reevaluates_its_last_piece() -> None:
    starts = piece_starts(SECOND, G)
    assert reuse_point(SECOND, starts, 0, SECOND, starts) == len(SECOND) - 3


def test_a_prompt_that_does_not_extend_the_kept_one_reuses_only_the_shared_pieces() -> None:
    # A history window drops the first exchange: nothing but position 0 is shared.
    windowed = prompt(turn(USER, 102), turn(ASSISTANT, 203), turn(USER, 103, 104))
    assert reuse_point(SECOND, piece_starts(SECOND, G), 0, windowed, piece_starts(windowed, G)) == 0
    # A different last user message: only the pieces before it are reused.
    other = prompt(turn(USER, 100, 101), turn(ASSISTANT, 200, 201, 202), turn(USER, 999))
    assert reuse_point(SECOND, piece_starts(SECOND, G), 0, other, piece_starts(other, G)) == 7


def test_reuse_only_where_the_kept_context_was_cut_the_same_way() -> None:
    starts = piece_starts(THIRD, G)
    # Kept cells evaluated as one piece cannot stand in for the prompt's pieces.
    assert reuse_point(SECOND, [0], 0, THIRD, starts) == 0
    # Kept tokens that end before a shared start cannot reach it.
    partial = SECOND[:5]
    assert reuse_point(partial, [0], 0, THIRD, starts) == 0


def test_a_restored_sliding_window_context_is_not_cut_below_its_floor() -> None:
    kept, kept_starts = SECOND, piece_starts(SECOND, G)
    floor = len(SECOND) - 3
    starts = piece_starts(THIRD, G)
    assert reuse_point(kept, kept_starts, floor, THIRD, starts) == floor
    other = prompt(turn(USER, 100, 101), turn(ASSISTANT, 200, 201, 202), turn(USER, 999))
    # It would have to be cut back to 7, below the floor: read cold instead.
    assert reuse_point(kept, kept_starts, floor, other, piece_starts(other, G)) == 0


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


def test_replies_read_as_generated_are_one_token_a_piece() -> None:
    starts = piece_starts(THIRD, G, control)
    first_reply = 7 + len(G)  # after the first exchange and the request for a reply
    # Each token of an earlier reply, then its closing token, then the next request.
    assert starts[:6] == [0, 7, first_reply, first_reply + 1, first_reply + 2, first_reply + 3]
    assert THIRD[first_reply + 3] == END
    assert starts[-1] == len(THIRD) - 3  # the final request is not followed by a reply
    assert piece_starts(FIRST, G, control) == piece_starts(FIRST, G)  # no reply yet


def test_the_context_a_reply_left_is_reused_whole() -> None:
    # What the previous turn kept: its prompt, in its pieces, then the reply it generated.
    reply = [200, 201, 202]
    kept = FIRST + reply
    kept_starts = [*piece_starts(FIRST, G, control), *range(len(FIRST), len(kept))]
    starts = piece_starts(SECOND, G, control)
    assert SECOND[: len(kept)] == kept
    assert reuse_point(kept, kept_starts, 0, SECOND, starts) == len(kept)
    # A reply cut short (a retried turn) is reused as far as it goes.
    assert reuse_point(kept[:-1], kept_starts[:-1], 0, SECOND, starts) == len(kept) - 1
    # Generated tokens that are not the ones the next prompt holds are not reused.
    other = [*FIRST, 200, 999]
    other_starts = [*piece_starts(FIRST, G, control), len(FIRST), len(FIRST) + 1]
    assert reuse_point(other, other_starts, 0, SECOND, starts) == len(FIRST) + 1


# Llama 3's template: <|start_header_id|>role<|end_header_id|>\n\n content <|eot_id|>
SH, EH, EOT, NN, SYSTEM = 3, 4, 5, 11, 70
L3 = [SH, ASSISTANT, EH, NN]


def llama3_control(token: int) -> bool:
    return token in (SH, EH, EOT)


def llama3_turn(role: int, *content: int) -> list[int]:
    return [SH, role, EH, NN, *content, EOT]


def test_a_header_closing_control_token_marks_only_the_assistants_turns() -> None:
    # The tail from the last control token, <|end_header_id|>\n\n, ends every header:
    # taken as the marker, the system and user texts would be read a token at a time.
    tokens = [
        *llama3_turn(SYSTEM, 300, 301, 302, 303, 304),
        *llama3_turn(USER, 100, 101, 102),
        *llama3_turn(ASSISTANT, 200, 201, 202),
        *llama3_turn(USER, 103),
        *L3,
    ]
    assert generation_prompt(tokens, llama3_control) == L3
    reply = tokens.index(200)
    final = len(tokens) - len(L3)
    starts = piece_starts(tokens, L3, lambda t: t == EOT)
    assert starts == [0, reply - 4, reply, reply + 1, reply + 2, reply + 3, final]
    # Templates whose request for a reply opens with its control token keep that tail.
    assert generation_prompt(SECOND, control) == G
