"""The tournament folder: its lock, its definition, results exactly once, and a start that
brings results in line with the transcripts a killed run left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.tournament.games import Game, all_games
from runner.tournament.ledger import (
    ASIDE,
    GAMES,
    RESULTS,
    Ledger,
    LedgerError,
    read_results,
    result_from,
)
from runner.tournament.spec import Tournament, load_tournament
from runner.transcript import read_transcript
from tests.runner.analysis.transcripts import Agent, Conversation, write_conversation
from tests.runner.tournament.helpers import write_tournament


@pytest.fixture
def tournament(tmp_path: Path) -> Tournament:
    return load_tournament(write_tournament(tmp_path / "t"))


def played(folder: Path, tournament: Tournament, game: Game, status: str = "success") -> Path:
    """A game's transcript in the folder's games/, as a run would leave it: its agents are
    named after the entrants in their seats; the first one wins."""
    first, second = game.seats
    return write_conversation(
        folder / GAMES,
        Conversation(
            [Agent(name, tournament.entrant(name).model) for name in game.seats],
            [(first, "Let us argue about tea."), (second, "I lost.")],
            status=status,
            winner=first if status == "success" else None,
            loser=second if status == "success" else None,
            reason="end_rule" if status == "success" else status,
            rule="concession",
            game_id=game.id,
        ),
    )


def test_a_folder_is_locked_while_its_ledger_is_open(
    tmp_path: Path, tournament: Tournament
) -> None:
    folder = tmp_path / "out"
    first = Ledger.open(folder, tournament)
    try:
        with pytest.raises(LedgerError, match="already running"):
            Ledger.open(folder, tournament)
    finally:
        first.close()
    Ledger.open(folder, tournament).close()  # closed: free again


def test_results_are_kept_once_and_read_back(tmp_path: Path, tournament: Tournament) -> None:
    folder = tmp_path / "out"
    ledger = Ledger.open(folder, tournament)
    games = all_games(tournament)
    first = games[0]
    transcript = read_transcript(played(folder, tournament, first))
    ledger.record(result_from(tournament, first, transcript, folder))
    ledger.close()
    again = Ledger.open(folder, tournament)
    try:
        assert first not in again.pending()
        assert len(again.pending()) == len(games) - 1
    finally:
        again.close()
    definition, results = read_results(folder)
    assert definition["hash"] == tournament.hash
    [result] = results
    assert (result.game_id, result.status, result.decided_by) == (first.id, "success", "end_rule")
    assert result.winner == first.seats[0] and result.loser == first.seats[1]


def test_a_results_line_cut_off_by_a_kill_is_cut_away(
    tmp_path: Path, tournament: Tournament
) -> None:
    folder = tmp_path / "out"
    ledger = Ledger.open(folder, tournament)
    game = all_games(tournament)[0]
    ledger.record(
        result_from(tournament, game, read_transcript(played(folder, tournament, game)), folder)
    )
    ledger.close()
    whole = (folder / RESULTS).read_bytes()
    with (folder / RESULTS).open("ab") as f:
        f.write(b'{"type": "result", "game_id": "cut')
    Ledger.open(folder, tournament).close()
    assert (folder / RESULTS).read_bytes() == whole


def test_a_line_that_is_not_a_result_is_one_located_error(
    tmp_path: Path, tournament: Tournament
) -> None:
    folder = tmp_path / "out"
    Ledger.open(folder, tournament).close()
    (folder / RESULTS).write_text('{"type": "result"}\n', encoding="utf-8")
    with pytest.raises(LedgerError, match=rf"{RESULTS}:1: not a results line"):
        Ledger.open(folder, tournament)


def test_a_changed_tournament_needs_consent_and_the_old_definition_is_kept(
    tmp_path: Path, tournament: Tournament
) -> None:
    folder = tmp_path / "out"
    Ledger.open(folder, tournament).close()
    changed = load_tournament(write_tournament(tmp_path / "t", ["m1", "m2", "m3", "m4"]))
    with pytest.raises(LedgerError, match="--accept-changes"):
        Ledger.open(folder, changed)
    Ledger.open(folder, changed, accept_changes=True).close()
    kept = list(folder.glob("tournament.*.json"))
    assert len(kept) == 1 and tournament.hash[7:19] in kept[0].name
    assert read_results(folder)[0]["hash"] == changed.hash


def test_a_start_counts_finished_games_and_sets_interrupted_ones_aside(
    tmp_path: Path, tournament: Tournament
) -> None:
    folder = tmp_path / "out"
    ledger = Ledger.open(folder, tournament)
    finished, cut, failed = all_games(tournament)[:3]
    played(folder, tournament, finished)
    played(folder, tournament, cut, status="incomplete")  # killed before its end line
    played(folder, tournament, failed, status="error")
    try:
        found = ledger.reconcile()
        assert sorted(r.game_id for r in found.finalized) == sorted([finished.id, failed.id])
        assert [p.parent.name for p in found.moved_aside] == [ASIDE]
        assert cut in ledger.pending() and finished not in ledger.pending()
        # Retrying errors sets the failed game's transcript aside too and plays it again.
        again = ledger.reconcile(retry_errors=True)
        assert [read_transcript(p).run.game_id for p in again.moved_aside] == [failed.id]  # type: ignore[union-attr]
        assert failed in ledger.pending(retry_errors=True)
    finally:
        ledger.close()
