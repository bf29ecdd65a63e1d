"""``sparring tournament`` and ``sparring leaderboard`` as a user runs them: killed at
random moments and resumed, locked against a second process, refusing a changed file."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
from pathlib import Path

import pytest

from runner.cli import build_parser
from runner.tournament.games import all_games
from runner.tournament.ratings import ENTRANT_FIELDS
from runner.tournament.spec import load_tournament
from runner.transcript import read_transcript
from tests import cli
from tests.cli import ROOT, command, env, no_traceback, wait_for
from tests.fakes.ollama_server import FakeOllama
from tests.runner.tournament.helpers import write_tournament

MODELS = ["m1", "m2", "m3", "m4"]


def sparring(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return cli.sparring(*args, timeout=timeout)


def on(fake: FakeOllama) -> list[str]:
    return ["--backend", "ollama", "--host", fake.url, "--backoff", "0.01"]


def written(out: Path) -> int:
    """Lines written so far, transcripts and results together."""
    files = [*(out / "games").glob("*.jsonl"), out / "results.jsonl"] if out.exists() else []
    total = 0
    for f in files:
        try:
            total += f.read_bytes().count(b"\n")
        except FileNotFoundError:  # moved aside meanwhile
            continue
    return total


def result_lines(out: Path) -> list[dict[str, object]]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_killed_at_random_moments_and_resumed_every_game_counts_once(tmp_path: Path) -> None:
    path = write_tournament(tmp_path / "t", MODELS, games=2)
    planned = {g.id for g in all_games(load_tournament(path))}
    out = tmp_path / "out"
    rng = random.Random(20261124)
    with FakeOllama.in_thread(models=MODELS, token_delay=0.004) as fake:
        for _ in range(5):
            proc = subprocess.Popen(
                command("tournament", "run", path, "--out", out, "--quiet", *on(fake)),
                cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                # Killed once a random number more lines are on disk: mid-game, between a
                # transcript's end and its results line, or while a results line is written.
                target = written(out) + rng.randint(1, 40)
                wait_for(
                    lambda t=target, p=proc: written(out) >= t or p.poll() is not None, "progress"
                )
                proc.send_signal(signal.SIGKILL)
            finally:
                proc.wait(timeout=30)
        final = sparring("tournament", "run", path, "--out", out, "--quiet", *on(fake))
    assert final.returncode == 0, final.stderr
    no_traceback(final)
    lines = result_lines(out)
    ids = [str(r["game_id"]) for r in lines]
    assert sorted(ids) == sorted(planned)  # every game, and none twice
    for r in lines:
        transcript = read_transcript(out / str(r["transcript"]))
        assert transcript.status == "success"
    for aside in (out / "aside").glob("*.jsonl") if (out / "aside").exists() else []:
        kept = read_transcript(aside)  # kept and readable, never counted
        assert kept.run is None or kept.run.game_id in planned
    assert {read_transcript(p).run.game_id for p in (out / "games").glob("*.jsonl")} == planned


def test_a_second_process_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    path = write_tournament(tmp_path / "t", MODELS[:3], games=3)
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=MODELS, token_delay=0.02) as fake:
        first = subprocess.Popen(
            command("tournament", "run", path, "--out", out, "--quiet", *on(fake)),
            cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(lambda: fake.active > 0, "the first run playing")
            second = sparring("tournament", "run", path, "--out", out, "--quiet", *on(fake))
            status = sparring("tournament", "status", out, "--format", "json")
        finally:
            first.send_signal(signal.SIGINT)
            first.wait(timeout=30)
    assert second.returncode == 2
    no_traceback(second)
    assert "already running" in second.stderr and f"pid {first.pid}" in second.stderr
    state = json.loads(status.stdout)
    assert state["running"] == str(first.pid) and state["planned"] == 18


def test_a_changed_tournament_file_needs_an_explicit_flag(tmp_path: Path) -> None:
    path = write_tournament(tmp_path / "t", MODELS[:2], games=1)
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=MODELS) as fake:
        assert (
            sparring("tournament", "run", path, "--out", out, "--quiet", *on(fake)).returncode == 0
        )
        before = {r["game_id"] for r in result_lines(out)}
        write_tournament(tmp_path / "t", MODELS[:3], games=1)  # one more entrant
        refused = sparring("tournament", "run", path, "--out", out, "--quiet", *on(fake))
        accepted = sparring(
            "tournament", "run", path, "--out", out, "--quiet", "--accept-changes", *on(fake)
        )
    assert refused.returncode == 2 and "--accept-changes" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    after = {r["game_id"] for r in result_lines(out)}
    assert before < after and len(after) == 6  # the old games kept their results
    assert list(out.glob("tournament.*.json"))  # the old definition kept


def test_status_leaderboard_and_dry_run(tmp_path: Path) -> None:
    path = write_tournament(tmp_path / "t", MODELS, games=1)
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=MODELS) as fake:
        dry = sparring(
            "tournament", "run", path, "--out", out, "--dry-run", "--max-loaded", "3", *on(fake)
        )
        assert not (out / "results.jsonl").exists() and fake.requests == []
        played = sparring("tournament", "run", path, "--out", out, *on(fake))
    assert dry.returncode == 0, dry.stderr
    assert "12 games" in dry.stdout and "expected model loads: 5 (lower bound 5)" in dry.stdout
    assert played.returncode == 0, played.stderr
    assert "leaderboard" in played.stdout and "12 of 12 planned are done" in played.stdout
    status = sparring("tournament", "status", out, "--format", "json")
    state = json.loads(status.stdout)
    assert (state["done"], state["planned"], state["errors"], state["running"]) == (12, 12, 0, None)
    board_text = sparring("leaderboard", out, "--format", "json").stdout
    assert board_text.endswith("}\n")  # a whole line, for shells and tools reading lines
    board = json.loads(board_text)
    assert isinstance(board["first_seat_score"]["games"], int)
    assert [e["name"] for e in board["entrants"]] and {e["name"] for e in board["entrants"]} == set(
        MODELS
    )
    ratings = [e["rating"] for e in board["entrants"]]
    assert ratings == sorted(ratings, reverse=True)  # best first
    assert tuple(board["entrants"][0]) == ENTRANT_FIELDS
    assert board == json.loads(sparring("leaderboard", out, "--format", "json").stdout)  # seeded
    csv = sparring("leaderboard", out, "--format", "csv").stdout.splitlines()
    assert csv[0] == ",".join(ENTRANT_FIELDS) and len(csv) == 5


def test_the_run_says_how_it_schedules_and_status_says_what_it_learned(tmp_path: Path) -> None:
    path = write_tournament(tmp_path / "t", MODELS, games=1)
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=MODELS, max_loaded=2, load_delay=0.06) as fake:
        played = sparring("tournament", "run", path, "--out", out, *on(fake))
        server_loads = sum(fake.residency.loads.values())
        again = sparring("tournament", "run", path, "--out", out, "--dry-run", *on(fake))
    assert played.returncode == 0, played.stderr
    assert played.stdout.splitlines()[0] == (
        f"server {fake.url}: how many models it holds is learned while playing (from /api/ps)"
    )
    status = sparring("tournament", "status", out)
    assert status.returncode == 0, status.stderr
    assert re.search(
        rf"server {re.escape(fake.url)}: holds 2 models \(learned: m\d evicted when a third "
        r"model \(m\d\) loaded at [-\dT:]+Z\)",
        status.stdout,
    ), status.stdout
    assert f"model loads: {server_loads} (lower bound 7 on a server holding 2)" in status.stdout
    state = json.loads(sparring("tournament", "status", out, "--format", "json").stdout)
    [server] = state["servers"]
    assert (server["server"], server["holds"], server["loads"]) == (fake.url, 2, server_loads)
    assert state["model_loads"] == server_loads
    # A plan made later starts from what was learned.
    assert again.returncode == 0, again.stderr
    assert f"server {fake.url}: holds 2 models (learned: " in again.stdout
    assert "model blocks with 2 model(s) loaded at once" in again.stdout
    assert "expected model loads: 7 (lower bound 7)" in again.stdout


def test_max_loaded_is_a_number_or_learn(tmp_path: Path) -> None:
    args = ["tournament", "run", "t.yaml", "--out", "o", "--max-loaded"]
    assert build_parser().parse_args([*args, "learn"]).max_loaded == "learn"
    assert build_parser().parse_args([*args, "2"]).max_loaded == 2
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*args, "some"])
    assert exit_.value.code == 2


@pytest.mark.parametrize("model", ["missing:1b"])
def test_a_missing_judge_model_is_refused_before_anything_runs(model: str, tmp_path: Path) -> None:
    path = write_tournament(tmp_path / "t", MODELS[:2], extra=f"judge: {{model: {model}}}\n")
    with FakeOllama.in_thread(models=MODELS) as fake:
        result = sparring("tournament", "run", path, "--out", tmp_path / "out", *on(fake))
        chats = [r for r in fake.requests if r.get("messages")]
    assert result.returncode == 2
    no_traceback(result)
    assert f"judge model '{model}' not found" in result.stderr
    assert chats == []


@pytest.mark.parametrize("verb", [["tournament", "run", "t.yaml", "--out", "o"], ["rerun", "x"]])
def test_options_a_command_would_ignore_are_not_offered(verb: list[str]) -> None:
    # A tournament sizes its games per host from the server's slots, and a rerun plays one
    # conversation: --max-conversations would be accepted there and silently do nothing.
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*verb, "--max-conversations", "3"])
    assert exit_.value.code == 2
    assert (
        build_parser().parse_args(["run", "s.yaml", "--max-conversations", "3"]).max_conversations
        == 3
    )
