"""sparring rerun: one conversation of a batch played again from its run line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runner.run.replay import load_run, scenario_of
from runner.transcript import Transcript, read_transcript
from tests import cli
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.openai_server import FakeOpenAI
from tests.runner.tournament.helpers import write_tournament

ROOT = Path(__file__).resolve().parents[3]
I_LOST = ROOT / "scenarios" / "i-lost.yaml"
PANEL = """\
name: panel
agents:
  - {name: Ann, model: m, persona: "You are Ann.", opening: "Shall we start?"}
  - {name: Bob, model: m, options: {temperature: 0.3}}
  - {name: Cy, model: m, max_turns: 2}
order: random
history: 3
max_turns: 7
"""


def sparring(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return cli.offline(*args)


def by_repeat(out: Path) -> dict[int, Transcript]:
    found = [read_transcript(p) for p in sorted(out.glob("*.jsonl"))]
    return {t.run.repeat_index: t for t in found if t.run is not None}


def assert_same_conversation(again: Transcript, first: Transcript) -> None:
    assert again.run is not None and first.run is not None
    assert again.status == first.status == "success"
    for field in ("scenario", "seed", "base_seed", "repeat_index", "repeat", "scenario_hash"):
        assert getattr(again.run, field) == getattr(first.run, field), field
    assert [a.options for a in again.run.agents] == [a.options for a in first.run.agents]
    assert again.run.overrides["rerun_of"] == first.run.conversation_id
    assert again.run.conversation_id != first.run.conversation_id
    reason = again.run.backend_reason or ""
    assert reason.startswith(("--backend", "the engine it was recorded on")), reason

    def said(t: Transcript) -> list[tuple[str, int, int | None, str]]:
        return [(turn.speaker, turn.round, turn.seed, turn.content) for turn in t.turns]

    assert said(again) == said(first)
    assert again.end is not None and first.end is not None
    assert again.end.outcome == first.end.outcome


def test_rerun_plays_game_2_again_and_only_it(tmp_path: Path) -> None:
    with FakeOllama.in_thread(models=["qwen:0.5b", "llama3.2:1b"]) as fake:
        batch = sparring(
            "run", I_LOST, "--host", fake.url, "--repeat", "3", "--seed", "42",
            "--out", tmp_path / "batch", "--quiet",
        )  # fmt: skip
        assert batch.returncode == 0, batch.stderr
        games = by_repeat(tmp_path / "batch")
        before = len(fake.requests)
        again = sparring(
            "rerun", games[2].path, "--out", tmp_path / "again", "--log-format", "console"
        )
        asked = fake.requests[before:]
    assert again.returncode == 0, again.stderr
    [replayed] = by_repeat(tmp_path / "again").values()
    assert_same_conversation(replayed, games[2])
    assert len(asked) == len([t for t in games[2].turns if not t.scripted])
    assert replayed.run is not None and replayed.run.backend == "ollama"
    assert replayed.run.host == fake.url  # the recorded host, without --host
    assert "(base seed 42, repeat #2)" in again.stdout
    assert str(replayed.path) in again.stdout
    shown = sparring("show", games[2].path)
    assert f"play it again: sparring rerun {games[2].path}" in shown.stdout


def test_rerun_keeps_a_random_speaking_order_and_history_window(tmp_path: Path) -> None:
    scenario = tmp_path / "panel.yaml"
    scenario.write_text(PANEL, encoding="utf-8")
    with FakeOpenAI.in_thread(["m"]) as fake:
        batch = sparring(
            "run", scenario, "--host", fake.url, "--repeat", "4", "--out", tmp_path / "b",
            "--quiet",
        )  # fmt: skip
        assert batch.returncode == 0, batch.stderr
        games = by_repeat(tmp_path / "b")
        again = sparring("rerun", games[3].path, "--out", tmp_path / "a", "--quiet")
    assert again.returncode == 0, again.stderr
    [replayed] = by_repeat(tmp_path / "a").values()
    assert_same_conversation(replayed, games[3])
    orders = {tuple(t.speaker for t in g.turns) for g in games.values()}
    assert len(orders) > 1  # the order really is random: replaying it is not a given


def test_rerun_plays_a_tournament_game_again_with_its_own_seed(tmp_path: Path) -> None:
    entrants = [f"{{name: {m}, model: {m}, options: {{temperature: 0}}}}" for m in ("m1", "m2")]
    path = write_tournament(tmp_path / "t", entrants, swap=False, max_turns=4)
    with FakeOllama.in_thread(models=["m1", "m2"]) as fake:
        played = sparring(
            "tournament", "run", path, "--out", tmp_path / "cup", "--quiet",
            "--backend", "ollama", "--host", fake.url,
        )  # fmt: skip
        assert played.returncode == 0, played.stderr
        [game] = [read_transcript(p) for p in (tmp_path / "cup" / "games").glob("*.jsonl")]
        assert game.run is not None and game.run.game_id is not None
        again = sparring("rerun", game.path, "--out", tmp_path / "again")
        assert again.returncode == 0, again.stderr
        [replayed] = [read_transcript(p) for p in (tmp_path / "again").glob("*.jsonl")]
        twice = sparring("rerun", replayed.path, "--out", tmp_path / "twice", "--quiet")
        assert twice.returncode == 0, twice.stderr
        [replayed_twice] = [read_transcript(p) for p in (tmp_path / "twice").glob("*.jsonl")]
    assert_same_conversation(replayed, game)
    assert replayed.run is not None and replayed.run.game_id == game.run.game_id
    assert f"(base seed 5, game {game.run.game_id})" in again.stdout
    assert [t.content for t in replayed_twice.turns] == [t.content for t in game.turns]


def test_another_engine_drops_the_recorded_hosts(tmp_path: Path) -> None:
    with FakeOllama.in_thread(models=["qwen:0.5b", "llama3.2:1b"]) as fake:
        batch = sparring("run", I_LOST, "--host", fake.url, "--out", tmp_path, "--quiet")
    assert batch.returncode == 0, batch.stderr
    run = load_run(next(tmp_path.glob("*.jsonl")))
    same = scenario_of(run)
    assert same.backend == "ollama" and {a.host for a in same.agents} == {fake.url}
    other = scenario_of(run, "openai")
    assert {a.host for a in other.agents} == {None}


def test_a_transcript_without_a_run_line_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "killed.jsonl"
    empty.write_bytes(b"")
    result = sparring("rerun", empty, "--out", tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"sparring: {empty}: no run line (the run was killed before it began)"
    ]


SAMPLE = ROOT / "transcripts" / "sample" / "i-lost.jsonl"  # written before run lines had `resolved`


def test_a_transcript_written_before_resolved_scenarios_is_replayed_from_its_fields() -> None:
    run = load_run(SAMPLE)
    assert run.resolved is None  # the old format: the scenario only in the run line's fields
    scenario = scenario_of(run)
    assert scenario.name == run.scenario and scenario.order == run.order
    assert [a.name for a in scenario.agents] == [a.name for a in run.agents]
    assert [a.options.set_fields() for a in scenario.agents] == [a.options for a in run.agents]
    assert [(r.name, r.phrase) for r in scenario.end] == [
        (r["name"], r["phrase"]) for r in run.end_rules
    ]
    assert (scenario.seed, scenario.hash) == (run.base_seed, run.scenario_hash)
    assert scenario.overrides.rerun_of == run.conversation_id


def test_a_new_run_line_holds_the_resolved_scenario_and_rerun_reads_it_back(
    tmp_path: Path,
) -> None:
    with FakeOllama.in_thread(models=["qwen:0.5b", "llama3.2:1b"]) as fake:
        batch = sparring("run", I_LOST, "--host", fake.url, "--out", tmp_path, "--quiet")
    assert batch.returncode == 0, batch.stderr
    run = load_run(next(tmp_path.glob("*.jsonl")))
    assert run.resolved is not None and run.resolved["hash"] == run.scenario_hash
    # A field only the snapshot has comes back from it, not from the run line's fields.
    edited = run.model_copy(update={"resolved": {**run.resolved, "kickoff": "Go on."}})
    assert scenario_of(edited).kickoff == "Go on."


def test_an_unknown_order_in_a_run_line_is_a_located_error(tmp_path: Path) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    edited = tmp_path / "edited.jsonl"
    edited.write_text(
        "\n".join([lines[0].replace('"order":"round_robin"', '"order":"spiral"'), *lines[1:]])
        + "\n",
        encoding="utf-8",
    )
    result = sparring("rerun", edited, "--out", tmp_path / "again")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"sparring: {edited}:1: run line: order: Input should be 'round_robin'")
    assert not (tmp_path / "again").exists()  # nothing was played
