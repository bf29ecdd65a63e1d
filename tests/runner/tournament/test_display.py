"""How the tournament's displays say things."""

from __future__ import annotations

import csv
import io

import pytest
from rich.console import Console

from runner.tournament.display import duration, leaderboard_table, leaderboard_text
from runner.tournament.ratings import ENTRANT_FIELDS, Decided, leaderboard


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0.2, "1 s"), (30, "30 s"), (89, "89 s"), (90, "2 min"), (725, "12 min"), (12_600, "3.5 h")],
)
def test_a_time_left_is_never_rounded_to_nothing(seconds: float, said: str) -> None:
    assert duration(seconds) == said


def test_the_leaderboard_table_shows_ties_rank_ranges_and_games_lost() -> None:
    games = [Decided("a", "b", 1.0), Decided("b", "a", 0.5)] * 2 + [Decided("c", "a", 0.0)]
    board = leaderboard(games, ["a", "b", "c"], rounds=50, seed=1)
    by_name = {s.name: s for s in board.entrants}
    by_name["c"].errors, by_name["c"].own_errors, by_name["c"].refusals = 3, 2, 1
    out = Console(file=io.StringIO(), width=200)
    leaderboard_table(out, board)
    lines = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
    row = {line.split("│")[1].strip(): line for line in lines if "│" in line}
    for s in board.entrants:
        rank = f"{s.rank}=" if s.tied else str(s.rank)
        assert row[s.name].split("│")[0].strip() == rank
        ranks = str(s.rank) if s.rank == s.rank_worst else f"{s.rank}-{s.rank_worst}"
        assert row[s.name].split("│")[4].strip() == ranks
    assert "3 (2 own, 1 refused)" in row["c"] and "lost to errors" in lines[1]
    assert any(line.startswith("log-likelihood (three outcomes") for line in lines)
    assert ["name", *rows_of(leaderboard_text(board, "csv"))[0][1:]] == list(ENTRANT_FIELDS)


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))
