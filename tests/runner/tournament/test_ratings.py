"""Ratings: recover known strengths, honest intervals, finite ratings for perfect records,
the same fit on pair counts as on games, ranks from intervals, and the tie model."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from runner.analysis.leaderboard import LeaderboardRow
from runner.tournament.fit import PairCounts, rank_bounds, rate
from runner.tournament.ratings import CENTER, ENTRANT_FIELDS, SCALE, Decided, leaderboard

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


def per_game_fit(games: list[Decided], names: list[str]) -> dict[str, float]:
    """The fit the pair counts replace: scikit-learn's logistic regression on two rows per
    game (a draw half a win each side), ratings shifted to a mean of 1000."""
    from sklearn.linear_model import LogisticRegression

    index = {name: i for i, name in enumerate(names)}
    x = np.zeros((2 * len(games), len(names) + 1))
    y = np.tile([1.0, 0.0], len(games))
    weight = np.zeros(2 * len(games))
    for k, game in enumerate(games):
        x[2 * k : 2 * k + 2, index[game.first]] = 1.0
        x[2 * k : 2 * k + 2, index[game.second]] = -1.0
        x[2 * k : 2 * k + 2, -1] = 1.0
        weight[2 * k], weight[2 * k + 1] = game.score, 1.0 - game.score
    model = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky", tol=1e-10)
    model.fit(x, y, sample_weight=weight)
    coef = model.coef_[0]
    ratings = CENTER + SCALE * (coef[:-1] - coef[:-1].mean())
    return {**dict(zip(names, ratings, strict=True)), "seat": SCALE * coef[-1]}


def with_draws(games: list[Decided], share: float, seed: int = 4) -> list[Decided]:
    rng = random.Random(seed)
    return [Decided(g.first, g.second, 0.5) if rng.random() < share else g for g in games]


def test_the_fit_on_pair_counts_gives_the_per_game_ratings() -> None:
    games = with_draws(simulate(8, seat_edge=60.0), 0.25)
    board = leaderboard(games, list(STRENGTH), rounds=20, seed=1)
    expected = per_game_fit(games, list(STRENGTH))
    for s in board.entrants:
        assert s.rating == pytest.approx(expected[s.name], abs=0.01)
    assert board.seat_advantage["rating"] == pytest.approx(expected["seat"], abs=0.01)


def test_resampled_counts_give_the_intervals_of_resampled_games() -> None:
    """Drawing the counts from a multinomial is the bootstrap over games: the intervals
    match those of scipy's bootstrap resampling the same games one by one."""
    from scipy import stats

    games = simulate(6)
    names = list(STRENGTH)
    board = leaderboard(games, names, rounds=2000, seed=5)

    def strong_rating(sample: np.ndarray) -> float:
        return per_game_fit([games[i] for i in sample], names)["strong"]

    boot = stats.bootstrap(
        (np.arange(len(games)),), strong_rating, vectorized=False, n_resamples=400,
        method="percentile", rng=np.random.default_rng(6),
    )  # fmt: skip
    strong = next(s for s in board.entrants if s.name == "strong")
    width = strong.ci_high - strong.ci_low
    assert abs(strong.ci_low - boot.confidence_interval.low) < 0.1 * width
    assert abs(strong.ci_high - boot.confidence_interval.high) < 0.1 * width


def test_a_million_games_cost_what_their_pairs_cost() -> None:
    tallies = {("a", "b"): (600_000, 200_000, 200_000), ("b", "a"): (200_000, 200_000, 600_000)}
    counts = PairCounts.from_tallies(tallies)
    assert len(counts.wins) == 2  # one row per ordered pair, not one per game
    board = rate(counts, rounds=50, seed=1)
    a = next(s for s in board.entrants if s.name == "a")
    assert (a.games, a.wins, a.draws, a.losses) == (2_000_000, 1_200_000, 400_000, 400_000)
    assert a.ci_high - a.ci_low < 2  # two million games pin the rating down


def test_ranks_follow_the_intervals_and_overlaps_are_ties() -> None:
    low = np.array([1100.0, 1050.0, 900.0, 700.0])
    high = np.array([1200.0, 1150.0, 1120.0, 800.0])
    best, worst = rank_bounds(low, high)
    # Only the last is wholly below the others; the first three overlap in a chain.
    assert best.tolist() == [1, 1, 1, 4]
    assert worst.tolist() == [3, 3, 3, 4]
    board = leaderboard(simulate(40), list(STRENGTH), rounds=200, seed=1)
    by_name = {s.name: s for s in board.entrants}
    assert by_name["strong"].rank == 1 and not by_name["strong"].tied
    assert by_name["weak"].rank == by_name["weak"].rank_worst == 4
    few = leaderboard(simulate(1), list(STRENGTH), rounds=200, seed=1)
    assert {(s.rank, s.rank_worst, s.tied) for s in few.entrants} == {(1, 4, True)}


def simulate_davidson(rounds: int, nu: float, seed: int = 7) -> list[Decided]:
    """Games drawn from the Davidson model with draw parameter ``nu``."""
    rng = random.Random(seed)
    games = []
    for _ in range(rounds):
        for first in STRENGTH:
            for second in STRENGTH:
                if first != second:
                    pi_a = math.exp(STRENGTH[first] / SCALE)
                    pi_b = math.exp(STRENGTH[second] / SCALE)
                    tie = nu * math.sqrt(pi_a * pi_b)
                    u = rng.random() * (pi_a + pi_b + tie)
                    score = 1.0 if u < pi_a else 0.5 if u < pi_a + tie else 0.0
                    games.append(Decided(first, second, score))
    return games


def test_the_davidson_model_fits_draws_better_when_they_follow_it() -> None:
    games = simulate_davidson(60, nu=1.5)
    half = leaderboard(games, list(STRENGTH), rounds=100, seed=1)
    tie = leaderboard(games, list(STRENGTH), rounds=100, seed=1, draws="davidson")
    assert half.log_likelihood == tie.log_likelihood  # both fits, whichever is shown
    assert tie.log_likelihood["davidson"] > tie.log_likelihood["half"] + 5
    assert tie.draw_parameter == pytest.approx(1.5, rel=0.2)
    gaps = {s.name: s.rating for s in tie.entrants}
    assert gaps["strong"] - gaps["weak"] == pytest.approx(600, abs=80)
    assert [s.name for s in tie.entrants] == list(STRENGTH)
    data = json.loads(json.dumps(tie.to_dict(), allow_nan=False))
    assert data["draws"] == "davidson" and "Davidson" in data["method"]


def test_without_draws_both_fits_are_alike() -> None:
    games = simulate(10)
    board = leaderboard(games, list(STRENGTH), rounds=20, seed=1, draws="davidson")
    half = leaderboard(games, list(STRENGTH), rounds=20, seed=1)
    assert board.log_likelihood["davidson"] == pytest.approx(board.log_likelihood["half"], abs=0.01)
    for a, b in zip(board.entrants, half.entrants, strict=True):
        assert a.rating == pytest.approx(b.rating, abs=0.5)


def test_an_entrant_without_games_has_no_interval_and_any_rank() -> None:
    board = leaderboard(simulate(20), [*STRENGTH, "newcomer"], rounds=100, seed=1)
    newcomer = next(s for s in board.entrants if s.name == "newcomer")
    assert newcomer.games == 0 and (newcomer.rank, newcomer.rank_worst) == (1, 5)
    row = next(e for e in board.to_dict()["entrants"] if e["name"] == "newcomer")
    assert row["ci_low"] is None and row["ci_high"] is None


def test_nothing_but_draws_is_strict_json_under_the_tie_model() -> None:
    games = [Decided("a", "b", 0.5), Decided("b", "a", 0.5)] * 4
    board = leaderboard(games, ["a", "b"], rounds=50, seed=1, draws="davidson")
    data = json.loads(json.dumps(board.to_dict(), allow_nan=False))
    assert data["draw_parameter"] is None  # unbounded: every game a draw
    assert data["log_likelihood"]["davidson"] == 0.0  # draws predicted with certainty
    assert abs(board.entrants[0].rating - board.entrants[1].rating) < 1e-6
