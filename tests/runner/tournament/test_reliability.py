"""The judges' reliability: order flips, position preference, abstentions, agreement
between orders and between judges, and games a judge judged its own model in."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from runner.analysis.leaderboard import tournament_standings
from runner.model.generate import RetryPolicy
from runner.settings import RunSettings
from runner.tournament.ledger import ResultRecord
from runner.tournament.play import PlaySettings, play
from runner.tournament.reliability import judge_reliability
from runner.tournament.spec import load_tournament
from runner.tournament.standings import folder_leaderboard
from runner.transcript import VerdictRecord
from tests.fakes.ollama_server import FakeOllama
from tests.runner.cli.test_startup import without_report_extra
from tests.runner.tournament.helpers import write_tournament
from tests.runner.tournament.test_cli import sparring

SEATS = ["opener", "replier"]
MODELS = {"m1": "m1", "m2": "m2", "m3": "m3"}


def verdict(judge: str, order: str, winner: str | None, game: tuple[str, str]) -> VerdictRecord:
    """A verdict as the judge gives it: ``winner`` is Speaker 1 ("first"), 2 or a draw."""
    first, second = game if order == "as_seated" else game[::-1]
    speaker = {"first": first, "second": second}.get(winner or "")
    error = None if winner else "the reply did not follow the verdict schema"
    return VerdictRecord(
        judge_model=judge, order=order, winner=winner, speaker=speaker, error=error
    )  # type: ignore[arg-type]


def result(number: int, game: tuple[str, str], verdicts: list[VerdictRecord]) -> ResultRecord:
    return ResultRecord(
        game_id=f"g{number}", tournament_hash="sha256:x", pairing=sorted(game),
        seats=dict(zip(SEATS, game, strict=True)), seed=number, status="success",
        draw=True, decided_by="max_turns", judge=verdicts, transcript=f"games/{number}.jsonl",
    )  # fmt: skip


def games(n: int, seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [tuple(rng.sample(sorted(MODELS), 2)) for _ in range(n)]  # type: ignore[misc]


def judged(judge: str, pick: Any, n: int = 40) -> list[ResultRecord]:
    """``n`` games, each judged in both orders by ``pick(game, order) -> winner``."""
    return [
        result(i, g, [verdict(judge, o, pick(g, o), g) for o in ("as_seated", "swapped")])
        for i, g in enumerate(games(n))
    ]


def test_a_judge_that_always_names_speaker_1_flips_every_game() -> None:
    report = judge_reliability(judged("j", lambda g, o: "first"), SEATS, MODELS)
    assert report is not None
    [j] = report["judges"]
    assert j["order_flips"]["count"] == j["order_flips"]["of"] == 40
    assert j["order_flips"]["ci_low"] > 0.9
    assert j["speaker_1"]["rate"] == 1.0
    assert j["order_alpha"] < 0  # the orders disagree more than chance would
    assert report["between_judges"] is None


def test_a_judge_that_follows_the_entrant_never_flips() -> None:
    strength = {"m1": 3, "m2": 2, "m3": 1}

    def better(game: tuple[str, str], order: str) -> str:
        shown = game if order == "as_seated" else game[::-1]  # Speaker 1, Speaker 2
        return "first" if strength[shown[0]] > strength[shown[1]] else "second"

    report = judge_reliability(judged("j", better), SEATS, MODELS)
    assert report is not None
    [j] = report["judges"]
    assert j["order_flips"]["count"] == 0 and j["order_flips"]["ci_high"] < 0.15
    assert j["order_alpha"] == 1.0
    assert 0.3 < j["speaker_1"]["rate"] < 0.7


def test_abstentions_and_a_judges_own_model_are_counted() -> None:
    rng = random.Random(3)
    picks = ["first", "second", "draw", None]
    results = judged("m1", lambda g, o: rng.choice(picks), n=60)
    report = judge_reliability(results, SEATS, MODELS)
    assert report is not None
    [j] = report["judges"]
    verdicts = [v for r in results for v in r.judge or []]
    assert j["verdicts"] == len(verdicts) == 120
    assert j["abstentions"] == sum(v.winner is None for v in verdicts)
    both = sum(1 for r in results if all(v.winner for v in r.judge or []))
    assert j["order_flips"]["of"] == both
    own = [r for r in results if "m1" in r.seats.values()]
    assert j["self_judged"]["games"] == len(own) > 0
    named = [v.speaker for r in own for v in r.judge or [] if v.speaker is not None]
    assert j["self_judged"]["verdicts_for_own_model"] == named.count("m1")
    assert j["self_judged"]["verdicts_against_own_model"] == len(named) - named.count("m1")
    json.dumps(report, allow_nan=False)


def test_several_judges_are_compared_on_the_games_they_share() -> None:
    def seat(g: tuple[str, str], o: str) -> str:  # always the first seat's entrant
        return "first" if o == "as_seated" else "second"

    agreeing = judged("a", seat)
    for r, other in zip(agreeing, judged("b", seat), strict=True):
        r.judge.extend(other.judge or [])  # type: ignore[union-attr]
    report = judge_reliability(agreeing, SEATS, MODELS)
    assert report is not None and report["between_judges"]["models"] == ["a", "b"]
    assert report["between_judges"]["unanimous"]["count"] == 40
    # A single value throughout: agreement is perfect but alpha is not defined.
    assert report["between_judges"]["alpha"] is None

    rng = random.Random(5)
    mixed = judged("a", seat)
    for r, other in zip(
        mixed, judged("c", lambda g, o: rng.choice(["first", "second"])), strict=True
    ):
        r.judge.extend(other.judge or [])  # type: ignore[union-attr]
    between = judge_reliability(mixed, SEATS, MODELS)["between_judges"]  # type: ignore[index]
    assert between["unanimous"]["count"] < 40
    assert between["alpha"] is None or between["alpha"] < 0.5


def test_no_judge_no_report() -> None:
    assert judge_reliability([result(0, ("m1", "m2"), [])], SEATS, MODELS) is None


async def test_status_and_the_leaderboard_carry_the_judges_reliability(tmp_path: Path) -> None:
    judge = "judge:1b"
    t = load_tournament(
        write_tournament(
            tmp_path / "t", ["m1", "m2", "m3"], games=1, max_turns=3,
            extra=f"judge: {{model: {judge}, when: always}}\n",
        )
    )  # fmt: skip
    out = tmp_path / "out"
    async with FakeOllama(["m1", "m2", "m3", judge], concede_after=None) as fake:
        # A judge that always names Speaker 1: every game's two verdicts disagree.
        fake.script(judge, *['{"winner": "first", "reason": "it opened"}'] * 24)
        run = RunSettings(
            out_dir=out, backend="ollama", hosts=(fake.url,), retry=RetryPolicy(2, base=0.01)
        )
        await play(t, PlaySettings(out=out, run=run))
    board = folder_leaderboard(out, rounds=20)
    assert board.judges is not None
    [j] = board.judges["judges"]
    assert j["model"] == judge and j["verdicts"] == 12 and j["abstentions"] == 0
    assert j["order_flips"]["count"] == j["order_flips"]["of"] == 6
    standings = tournament_standings(out)
    assert standings is not None and standings.judges == board.judges  # the report's too
    status = sparring("tournament", "status", out, "--format", "json")
    assert json.loads(status.stdout)["judges"] == board.judges
    text = sparring("tournament", "status", out).stdout
    assert f"judge {judge}: 6 games, 12 verdicts" in text
    assert "verdict flips when the order flips: 6 of 6" in text
    # Without the report extra the progress is still there, and says what the rest needs.
    light = without_report_extra("tournament", "status", str(out))
    assert light.returncode == 0, light.stderr
    assert "games: 6/6 done" in light.stdout and "judge " not in light.stdout
    assert "the judges' reliability needs the report extra: pip install" in light.stdout
