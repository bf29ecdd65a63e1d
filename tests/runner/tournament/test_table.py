"""Results tables played elsewhere: games or pair counts, CSV or JSON lines, rated with the
tournament's method; bad input is one line naming file, line and column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.errors import ConfigError
from runner.tournament.fit import rate
from runner.tournament.ratings import Decided, leaderboard
from runner.tournament.table import read_table
from tests.runner.tournament.test_cli import sparring
from tests.runner.tournament.test_ratings import STRENGTH, simulate, with_draws

OUTCOME = {1.0: "a", 0.5: "draw", 0.0: "b"}


def games_csv(path: Path, games: list[Decided]) -> Path:
    lines = ["a,b,outcome", *(f"{g.first},{g.second},{OUTCOME[g.score]}" for g in games)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tallies(games: list[Decided]) -> dict[tuple[str, str], list[int]]:
    counts: dict[tuple[str, str], list[int]] = {}
    for g in games:
        counts.setdefault((g.first, g.second), [0, 0, 0])[int(2 - 2 * g.score)] += 1
    return counts


GAMES = with_draws(simulate(5, seat_edge=40.0), 0.2)


def test_a_table_of_games_is_rated_as_the_same_games_would_be(tmp_path: Path) -> None:
    counts = read_table(games_csv(tmp_path / "games.csv", GAMES))
    assert counts.games == len(GAMES)
    from_table = rate(counts, rounds=100, seed=3).to_dict()
    direct = leaderboard(GAMES, sorted(STRENGTH), rounds=100, seed=3).to_dict()
    assert from_table == direct


def test_counts_json_lines_and_csv_say_the_same(tmp_path: Path) -> None:
    by_pair = tallies(GAMES)
    counts_csv = tmp_path / "counts.csv"
    counts_csv.write_text(
        "a,b,wins,draws,losses\n"
        + "".join(f"{a},{b},{w},{d},{lost}\n" for (a, b), (w, d, lost) in by_pair.items()),
        encoding="utf-8",
    )
    counts_jsonl = tmp_path / "counts.jsonl"  # draws may be left out where there are none
    counts_jsonl.write_text(
        "".join(
            json.dumps({"a": a, "b": b, "wins": w, "losses": lost} | ({"draws": d} if d else {}))
            + "\n"
            for (a, b), (w, d, lost) in by_pair.items()
        ),
        encoding="utf-8",
    )
    games_jsonl = tmp_path / "games.jsonl"
    games_jsonl.write_text(
        "".join(
            json.dumps({"outcome": OUTCOME[g.score], "b": g.second, "a": g.first}) + "\n"
            for g in GAMES
        ),
        encoding="utf-8",
    )
    tables = [
        read_table(p)
        for p in (games_csv(tmp_path / "g.csv", GAMES), counts_csv, counts_jsonl, games_jsonl)
    ]
    for table in tables[1:]:
        assert table.names == tables[0].names
        for column in ("first", "second", "wins", "draws", "losses"):
            assert np.array_equal(getattr(table, column), getattr(tables[0], column))


def test_a_million_games_are_read_as_the_pairs_they_make(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("a,b,outcome\n")
        for _ in range(250_000):
            f.write("x,y,a\nx,y,b\ny,x,draw\ny,x,a\n")
    counts = read_table(path)
    assert counts.games == 1_000_000 and len(counts.wins) == 2
    assert (counts.wins.tolist(), counts.draws.tolist(), counts.losses.tolist()) == (
        [250_000, 250_000],
        [0, 250_000],
        [250_000, 0],
    )


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        (
            "unknown.csv",
            "a,b,result\nm1,m2,a\n",
            'unknown.csv:1: column 3 "result": unknown column',
        ),
        ("twice.csv", "a,b,a,outcome\n", 'twice.csv:1: column 3 "a": given twice'),
        ("missing.csv", "a,b,wins\nm1,m2,3\n", 'missing.csv:1: no column "losses"'),
        (
            "negative.csv",
            "a,b,wins,draws,losses\nm1,m2,3,0,1\nm2,m1,2,-1,0\n",
            'negative.csv:3: column 4 "draws": a count cannot be negative, got -1',
        ),
        (
            "fraction.csv",
            "a,b,wins,losses\nm1,m2,1.5,1\n",
            'fraction.csv:2: column 3 "wins": expected a whole number of games, got "1.5"',
        ),
        (
            "itself.csv",
            "a,b,outcome\nm1,m2,a\n\nm3,m3,b\n",
            'itself.csv:4: column 2 "b": "m3" plays itself',
        ),
        (
            "outcome.csv",
            "a,b,outcome\nm1,m2,win\n",
            'outcome.csv:2: column 3 "outcome": expected a, b or draw',
        ),
        (
            "short.csv",
            "a,b,outcome\nm1,m2\n",
            "short.csv:2: 2 values where the header has 3 columns",
        ),
        ("empty.csv", "", "empty.csv:1: no games: the file is empty"),
        ("header.csv", "a,b,outcome\n", "header.csv:2: no games: no rows after the header"),
        ("zeros.csv", "a,b,wins,losses\nm1,m2,0,0\n", "zeros.csv:2: no games: every count is 0"),
        (
            "unknown.jsonl",
            '{"a": "m1", "b": "m2", "outcome": "a"}\n{"a": "m1", "b": "m2", "tie": 1}\n',
            'unknown.jsonl:2: column "tie": unknown column',
        ),
        (
            "negative.jsonl",
            '{"a": "m1", "b": "m2", "wins": 2, "losses": -3}\n',
            'negative.jsonl:1: column "losses": a count cannot be negative, got -3',
        ),
        (
            "syntax.jsonl",
            '{"a": "m1", "b": "m2", "outcome": "a"}\n{"a": "m1",\n',
            "syntax.jsonl:2:12: not JSON",
        ),
        (
            "itself.jsonl",
            '{"a": "m1", "b": "m1", "outcome": "a"}\n',
            'itself.jsonl:1: column "b": "m1" plays itself',
        ),
        (
            "zeros.jsonl",
            '{"a": "m1", "b": "m2", "wins": 0, "losses": 0}\n',
            "zeros.jsonl:1: no games",
        ),
    ],
)
def test_bad_tables_are_one_line_naming_file_line_and_column(
    name: str, text: str, error: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_table(path)
    [line] = caught.value.problems
    assert line.startswith(f"{path.parent}/{error}"), line


def test_the_first_bad_line_is_named_though_later_ones_repeat(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b,outcome\nm1,m2,a\nm1,m2,x\nm1,m2,a\nm2,m2,a\nm1,m2,x\n")
    with pytest.raises(ConfigError, match=r"bad\.csv:3: column 3"):
        read_table(path)


def test_the_leaderboard_command_rates_a_table_and_refuses_a_bad_one(tmp_path: Path) -> None:
    good = sparring("leaderboard", games_csv(tmp_path / "games.csv", GAMES), "--format", "json")
    assert good.returncode == 0, good.stderr
    board = json.loads(good.stdout)
    assert {e["name"] for e in board["entrants"]} == set(STRENGTH)
    assert board["games"] == len(GAMES) and board["judges"] is None
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,outcome\nm1,m2,a\nm1,m1,b\n", encoding="utf-8")
    refused = sparring("leaderboard", bad)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [f'sparring: {bad}:3: column 2 "b": "m1" plays itself']


def test_quoted_csv_values_are_read_as_csv(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('a,b,outcome\n"m, one",m2,a\n"m\ntwo",m2,b\n"m, one",m2,draw\n')
    counts = read_table(path)
    assert counts.names == ("m\ntwo", "m, one", "m2") and counts.games == 3
    bad = tmp_path / "bad.csv"
    bad.write_text('a,b,outcome\nm1,m2,a\n"m\n1",m2,x\n')
    with pytest.raises(ConfigError, match=r'bad\.csv:4: column 3 "outcome"'):
        read_table(bad)
    broken = tmp_path / "broken.csv"
    broken.write_text('a,b,outcome\nm1,m2,a\nm1,"m2"x,a\n')
    with pytest.raises(ConfigError, match=r"broken\.csv:3: not CSV"):
        read_table(broken)
