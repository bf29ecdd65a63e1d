"""Ratings: recover known strengths, honest intervals, finite ratings for perfect records."""

from __future__ import annotations

import json
import math
import random

from runner.analysis.leaderboard import LeaderboardRow
from runner.tournament.ratings import ENTRANT_FIELDS, Decided, leaderboard

STRENGTH = {"strong": 300.0, "good": 100.0, "fair": -100.0, "weak": -300.0}


def simulate(rounds: int, seed: int = 1, seat_edge: float = 0.0) -> list[Decided]:
    """Games between entrants of known strength (rating points), both seat orders."""
    rng = random.Random(seed)
    games = []
    for _ in range(rounds):
        for first in STRENGTH:
            for second in STRENGTH:
                if first == second:
                    continue
                gap = STRENGTH[first] - STRENGTH[second] + seat_edge
                p = 1 / (1 + 10 ** (-gap / 400))
                games.append(Decided(first, second, 1.0 if rng.random() < p else 0.0))
    return games


def test_known_strengths_are_recovered_in_order() -> None:
    board = leaderboard(simulate(15), list(STRENGTH), rounds=200, seed=1)
    assert [s.name for s in board.entrants] == ["strong", "good", "fair", "weak"]
    assert abs(sum(s.rating for s in board.entrants) / 4 - 1000) < 1e-6  # mean sits at 1000
    for s in board.entrants:
        assert s.ci_low < s.rating < s.ci_high
        assert s.games == 15 * 6


def test_intervals_shrink_with_more_games() -> None:
    few = leaderboard(simulate(3), list(STRENGTH), rounds=200, seed=2)
    many = leaderboard(simulate(40), list(STRENGTH), rounds=200, seed=2)
    width = {
        b: {s.name: s.ci_high - s.ci_low for s in board.entrants}
        for b, board in (("few", few), ("many", many))
    }
    assert all(width["many"][name] < width["few"][name] / 2 for name in STRENGTH)


def test_a_perfect_record_still_has_a_finite_rating() -> None:
    games = [Decided("a", "b", 1.0), Decided("b", "a", 0.0)] * 3
    board = leaderboard(games, ["a", "b"], rounds=100, seed=0)
    a, b = board.entrants
    assert a.name == "a" and a.wins == 6 and b.losses == 6
    assert all(math.isfinite(x) for x in (a.rating, a.ci_low, a.ci_high, b.rating))
    assert a.rating > 1000 > b.rating


def test_draws_count_half_a_win_each() -> None:
    board = leaderboard([Decided("a", "b", 0.5)] * 6, ["a", "b"], rounds=100, seed=0)
    a, b = sorted(board.entrants, key=lambda s: s.name)
    assert (a.draws, b.draws) == (6, 6)
    assert abs(a.rating - b.rating) < 1e-6
    assert board.pairwise["a"]["b"]["win_rate"] == 0.5


def test_the_same_results_give_the_same_table() -> None:
    games = simulate(5)
    one = leaderboard(games, list(STRENGTH), rounds=200, seed=9).to_dict()
    two = leaderboard(games, list(STRENGTH), rounds=200, seed=9).to_dict()
    assert one == two
    other = leaderboard(games, list(STRENGTH), rounds=200, seed=10).to_dict()
    assert other["entrants"] != one["entrants"]  # the seed is the bootstrap's


def test_the_first_seat_advantage_is_estimated() -> None:
    board = leaderboard(simulate(30, seat_edge=200.0), list(STRENGTH), rounds=200, seed=3)
    seat = board.seat_advantage
    assert seat["ci_low"] > 0 and 100 < seat["rating"] < 300
    assert board.first_seat_score["mean"] > 0.6
    assert (
        board.first_seat_score["ci_low"]
        < board.first_seat_score["mean"]
        < board.first_seat_score["ci_high"]
    )
    json_ready = board.to_dict()
    assert [e["name"] for e in json_ready["entrants"]] == [s.name for s in board.entrants]
    assert tuple(json_ready["entrants"][0]) == ENTRANT_FIELDS
    # The report reads the same rows.
    assert tuple(LeaderboardRow.model_fields) == ENTRANT_FIELDS


def test_a_board_without_enough_games_is_strict_json() -> None:
    for games in ([], simulate(1)[:1]):
        data = leaderboard(games, list(STRENGTH), rounds=50, seed=1).to_dict()
        text = json.dumps(data, allow_nan=False)  # raises on NaN or Infinity
        assert json.loads(text)["first_seat_score"]["games"] == len(games)
