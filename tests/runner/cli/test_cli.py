"""The ``sparring`` command line, run as a subprocess against a fake ollama server.

Every test starts the real CLI (``python -m runner.cli``) in a child process and points it
at :class:`tests.fakes.ollama_server.FakeOllama` served from a thread of the test process,
so exit codes, stdout/stderr, signals and the JSONL files on disk are the genuine article.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from runner import __version__
from runner.play.seeds import derive_seed
from runner.transcript import SCHEMA_VERSION, read_transcript
from tests.cli import (
    I_LOST,
    LLAMA,
    QWEN,
    ROOT,
    TIMEOUT,
    chats_for,
    command,
    env,
    interrupted,
    line_count,
    no_traceback,
    on,
    records,
    sparring,
    transcripts,
    wait_for,
)
from tests.fakes.ollama_server import (
    CONCESSION,
    NOT_FOUND_MESSAGE,
    SERVER_BUSY_MESSAGE,
    Action,
    Drop,
    Error,
    FakeOllama,
    MidStreamError,
    normalize,
)
from tests.fakes.ports import nowhere

OPENING = (
    "Now, let's have an argument with anything. Any topic OK but one sentence per one turn. "
    "If you or I tell 'I lost' then I or you win"
)
PERSONA = (
    "You are playing an argument game. Argue about any topic, one sentence per turn. "
    "Defend your position and never give up easily."
)


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama.in_thread(models=[QWEN, LLAMA]) as server:
        yield server


@dataclass
class Played:
    """One finished ``sparring run scenarios/i-lost.yaml`` against the fake."""

    result: subprocess.CompletedProcess[str]
    out: Path
    requests: list[dict[str, Any]]
    models: dict[str, dict[str, Any]]
    url: str


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Played:
    out = tmp_path_factory.mktemp("played")
    with FakeOllama.in_thread(models=[QWEN, LLAMA]) as server:
        result = sparring("run", I_LOST, *on(server, "--out", out))
        return Played(result, out, list(server.requests), dict(server.models), server.url)


# ---------------------------------------------------------------------------- a full run


def test_run_i_lost_stops_at_the_first_concession_and_names_the_winner(played: Played) -> None:
    result = played.result
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    assert "qwen wins" in result.stdout
    assert "llama loses" in result.stdout
    assert CONCESSION in result.stdout  # the live view streamed the turns
    files = transcripts(played.out)
    assert len(files) == 1
    assert str(files[0]) in result.stdout  # the summary says where the transcript is

    lines = records(files[0])
    kinds = [line["type"] for line in lines]
    assert kinds[0] == "run" and kinds[-1] == "end"
    assert set(kinds[1:-1]) == {"turn"}
    turns = lines[1:-1]
    # The game stops at the first concession: the last turn is the one that says "I lost",
    # and no generated turn before it conceded.
    assert turns[-1]["content"] == CONCESSION
    assert turns[-1]["speaker"] == "llama"
    assert all("I lost" not in t["content"] for t in turns[1:-1])
    assert len(turns) < 21  # not the turn limit


def test_run_record_has_every_field(played: Played) -> None:
    run = records(transcripts(played.out)[0])[0]
    for key in (
        "schema_version",
        "run_id",
        "conversation_id",
        "scenario",
        "source",
        "scenario_hash",
        "seed",
        "order",
        "agents",
        "backend",
        "backend_reason",
        "host",
        "sparring_version",
        "started_at",
    ):
        assert key in run, key
    assert run["schema_version"] == SCHEMA_VERSION
    assert re.fullmatch(r"[0-9a-f]{12}", run["run_id"])
    assert re.fullmatch(r"[0-9a-f]{12}", run["conversation_id"])
    assert run["scenario"] == "i-lost"
    assert Path(run["source"]).resolve() == I_LOST
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", run["scenario_hash"])
    assert isinstance(run["seed"], int)
    assert run["seed"] == derive_seed(20241124, 0)  # the scenario's seed, repeat 0
    assert run["order"] == "round_robin"
    assert run["backend"] == "ollama"
    assert "--backend ollama" in run["backend_reason"]
    assert run["host"] == played.url
    assert run["sparring_version"] == __version__
    datetime.fromisoformat(run["started_at"].replace("Z", "+00:00"))

    assert [a["name"] for a in run["agents"]] == ["llama", "qwen"]
    for agent, model in zip(run["agents"], [LLAMA, QWEN], strict=True):
        for key in ("name", "model", "model_digest", "persona", "options"):
            assert key in agent, key
        assert agent["model"] == model
        assert agent["model_digest"] == played.models[model]["digest"]
        assert agent["persona"] == PERSONA
        assert agent["options"]["temperature"] == 0.8
        assert agent["options"]["num_predict"] == 128
        assert agent["options"]["seed"] == derive_seed(run["seed"], agent["name"])
    assert run["agents"][0]["opening"] == OPENING


def test_turn_and_end_records(played: Played) -> None:
    lines = records(transcripts(played.out)[0])
    run, turns, end = lines[0], lines[1:-1], lines[-1]
    for i, turn in enumerate(turns):
        for key in (
            "index",
            "round",
            "speaker",
            "model",
            "content",
            "started_at",
            "ended_at",
            "ttft_ms",
            "latency_ms",
            "prompt_tokens",
            "completion_tokens",
            "done_reason",
            "attempts",
            "scripted",
        ):
            assert key in turn, (i, key)
        assert turn["index"] == i
        assert turn["round"] == i // 2 + 1
        assert turn["speaker"] == ("llama", "qwen")[i % 2]
        assert turn["model"] == (LLAMA, QWEN)[i % 2]
        assert turn["started_at"] <= turn["ended_at"]
    opening = turns[0]
    assert opening["scripted"] is True
    assert opening["content"] == OPENING
    assert opening["attempts"] == 0
    assert opening["ttft_ms"] is None and opening["completion_tokens"] is None
    for turn in turns[1:]:
        assert turn["scripted"] is False
        assert turn["attempts"] == 1
        assert turn["done_reason"] == "stop"
        assert turn["ttft_ms"] > 0
        assert turn["latency_ms"] >= turn["ttft_ms"]
        assert turn["prompt_tokens"] > 0
        assert turn["completion_tokens"] == len(turn["content"].split())

    assert end["status"] == "success"
    assert end["error"] is None
    assert {line["conversation_id"] for line in (run, *turns, end)} == {run["conversation_id"]}
    outcome = end["outcome"]
    assert outcome["winner"] == "qwen"
    assert outcome["loser"] == "llama"
    assert outcome["reason"] == "end_rule"
    assert outcome["rule"] == "concession"
    assert outcome["turn"] == turns[-1]["index"]
    totals = end["totals"]
    assert end["turns"] == totals["turns"] == len(turns)
    assert totals["scripted_turns"] == 1
    assert totals["generated_turns"] == len(turns) - 1
    assert totals["completion_tokens"] == sum(t["completion_tokens"] for t in turns[1:])
    assert totals["prompt_tokens"] == sum(t["prompt_tokens"] for t in turns[1:])
    assert totals["retries"] == 0

    transcript = read_transcript(transcripts(played.out)[0])
    assert transcript.status == "success"
    assert transcript.truncated is False
    assert transcript.run.run_id == run["run_id"]
    assert [t.content for t in transcript.turns] == [t["content"] for t in turns]
    assert transcript.end is not None
    assert transcript.end.outcome.winner == "qwen"


def test_each_model_is_sent_the_whole_conversation(played: Played) -> None:
    turns = records(transcripts(played.out)[0])[1:-1]
    assert len(played.requests) == len(turns) - 1  # one chat per generated turn, no retries
    for name, model in (("llama", LLAMA), ("qwen", QWEN)):
        requests = [r for r in played.requests if normalize(r["model"]) == normalize(model)]
        last = requests[-1]
        own = [t for t in turns if t["speaker"] == name and not t["scripted"]]
        before = turns[: own[-1]["index"]]  # everything said before its last turn
        messages = last["messages"]
        assert messages[0] == {"role": "system", "content": PERSONA}
        said = messages[1:]
        if said[0]["role"] == "user" and before[0]["speaker"] == name:
            assert said[0]["content"] == "Please begin."  # the kickoff before its own opening
            said = said[1:]
        expected = [
            {"role": "assistant" if t["speaker"] == name else "user", "content": t["content"]}
            for t in before
        ]
        assert said == expected
        run_agent = next(
            a for a in records(transcripts(played.out)[0])[0]["agents"] if a["name"] == name
        )
        own_turns = [t for t in before if t["speaker"] == name]
        assert last["options"]["seed"] == derive_seed(run_agent["options"]["seed"], len(own_turns))
        assert last["options"]["num_predict"] == 128


# ---------------------------------------------------------------------------- options


def test_repeat_with_seed_derives_distinct_reproducible_seeds(
    fake: FakeOllama, tmp_path: Path
) -> None:
    def play(out: Path) -> dict[int, list[dict[str, Any]]]:
        result = sparring("run", I_LOST, *on(fake, "--repeat", "3", "--seed", "5", "--out", out))
        assert result.returncode == 0, result.stderr
        no_traceback(result)
        files = transcripts(out)
        assert len(files) == 3
        by_repeat = {}
        for file in files:
            lines = records(file)
            assert lines[-1]["status"] == "success"
            by_repeat[lines[0]["repeat_index"]] = lines
        assert sorted(by_repeat) == [0, 1, 2]
        return by_repeat

    first = play(tmp_path / "first")
    seeds = [first[i][0]["seed"] for i in range(3)]
    assert len(set(seeds)) == 3
    assert seeds == [derive_seed(5, i) for i in range(3)]
    assert {first[i][0]["base_seed"] for i in range(3)} == {5}

    second = play(tmp_path / "second")
    assert [second[i][0]["seed"] for i in range(3)] == seeds
    for i in range(3):
        assert second[i][0]["agents"] == first[i][0]["agents"]
        # Same seeds, same (seed-dependent) replies from the fake: a replayable run.
        assert [t["content"] for t in second[i][1:-1]] == [t["content"] for t in first[i][1:-1]]


def test_dry_run_checks_everything_but_chats_with_nobody(fake: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # No --backend, no --host: auto finds the server through OLLAMA_HOST.
    result = sparring("run", I_LOST, "--dry-run", "--out", out, OLLAMA_HOST=fake.url)
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    assert f"seed {derive_seed(20241124, 0)}" in result.stdout
    assert "llama=llama3.2:1b@ollama" in result.stdout
    assert "1 conversation(s) would run" in result.stdout
    assert transcripts(out) == []
    assert fake.requests == []


def test_quiet_prints_only_the_summary(fake: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = sparring("run", I_LOST, *on(fake, "--quiet", "--out", out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "summary"
    assert "qwen wins" in result.stdout
    assert str(transcripts(out)[0]) in result.stdout
    assert CONCESSION not in result.stdout
    assert OPENING not in result.stdout
    assert "transcript:" not in result.stdout
    assert len(lines) <= 3


def test_version() -> None:
    script = Path(sys.executable).with_name("sparring")
    argv = [str(script)] if script.exists() else command()
    result = subprocess.run(
        [*argv, "--version"], capture_output=True, text=True, timeout=TIMEOUT, env=env()
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"sparring {__version__}"


# ---------------------------------------------------------------------------- bad input

GOOD_AGENTS = """\
name: t
agents:
  - name: a
    model: qwen:0.5b
  - name: b
    model: qwen:0.5b
"""

BAD_SCENARIOS: dict[str, tuple[str, str, str]] = {
    # case: (file text, "LINE:COL: FIELD" expected after the file name, message fragment)
    "unknown-key": (
        "name: t\nagents:\n  - name: a\n    model: qwen:0.5b\n    temprature: 0.5\n"
        "  - name: b\n    model: qwen:0.5b\n",
        "5:5: agents[0].temprature",
        "unknown key 'temprature'",
    ),
    "wrong-type": (GOOD_AGENTS + "max_turns: many\n", "7:12: max_turns", "'many'"),
    "duplicate-agent": (
        GOOD_AGENTS.replace("name: b", "name: a"),
        "5:11: agents[1].name",
        "duplicate agent name 'a'",
    ),
    "one-agent": (
        "name: t\nagents:\n  - name: a\n    model: qwen:0.5b\n",
        "3:3: agents",
        "at least two agents",
    ),
    "unknown-order": (GOOD_AGENTS + "order: alphabetical\n", "7:8: order", "'alphabetical'"),
    "malformed-regex": (
        GOOD_AGENTS + "end:\n  - regex: '(unclosed'\n    outcome: draw\n",
        "8:12: end[0].regex",
        "malformed regex",
    ),
    "undefined-placeholder": (
        GOOD_AGENTS.replace("name: a\n", "name: a\n    persona: You discuss {topic}.\n"),
        "4:14: agents[0].persona",
        "undefined placeholder {topic}",
    ),
    "not-a-mapping": ("just some words\n", "1:1: (top level)", "expected a mapping"),
    "not-yaml": ("name: t\nagents: [unclosed\n  - {\n", "3:5", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_validate_reports_one_located_line(case: str, tmp_path: Path) -> None:
    text, where, message = BAD_SCENARIOS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")
    result = sparring("validate", path)
    assert result.returncode == 2
    no_traceback(result)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{path}:{where}: ")
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", lines[0])
    assert message in lines[0]


@pytest.mark.parametrize(
    ("case", "message"), [("empty", "the file is empty"), ("missing", "no such file")]
)
def test_validate_empty_or_missing_file(case: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / f"{case}.yaml"
    if case == "empty":
        path.write_text("", encoding="utf-8")
    result = sparring("validate", path)
    assert result.returncode == 2
    no_traceback(result)
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"{path}: ")
    assert message in result.stderr


def test_validate_accepts_the_shipped_scenarios() -> None:
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    result = sparring("validate", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok  ") == len(files)


def test_validate_reads_tournament_files_as_tournaments(tmp_path: Path) -> None:
    files = sorted((ROOT / "scenarios" / "tournaments").glob("*.yaml"))
    result = sparring("validate", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok  ") == len(files) and "games of i-lost" in result.stdout
    broken = tmp_path / "t.yaml"
    text = files[0].read_text(encoding="utf-8").replace("entrants:", "entrants:\n  - 12\n", 1)
    broken.write_text(text.replace("scenario:", "scenari0:", 1), encoding="utf-8")
    result = sparring("validate", broken)
    assert result.returncode == 2 and "scenari0" in result.stderr
    assert "agents" not in result.stderr  # not read as a scenario missing its agents


def test_run_with_a_bad_scenario_fails_before_any_model_call(
    fake: FakeOllama, tmp_path: Path
) -> None:
    text, where, message = BAD_SCENARIOS["unknown-key"]
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    result = sparring("run", I_LOST, path, *on(fake, "--out", out))
    assert result.returncode == 2
    no_traceback(result)
    assert f"{path}:{where}" in result.stderr
    assert message in result.stderr
    assert fake.requests == []
    assert transcripts(out) == []  # not even the good file ran


# ---------------------------------------------------------------------------- models


def test_missing_model_fails_fast_then_pull_fetches_it(tmp_path: Path) -> None:
    with FakeOllama.in_thread(models=[QWEN]) as server:
        out = tmp_path / "out"
        result = sparring("run", I_LOST, *on(server, "--out", out, "--log-format", "console"))
        assert result.returncode == 2
        no_traceback(result)
        first, *explained = result.stderr.splitlines()
        assert first.endswith(f"does not have {LLAMA}"), result.stderr  # only the missing one
        assert all(line.startswith("  ") for line in explained)
        assert f"ollama pull {LLAMA}" in result.stderr
        assert server.requests == []
        assert transcripts(out) == []

        result = sparring("run", I_LOST, *on(server, "--out", out, "--pull"))
        assert result.returncode == 0, result.stderr
        assert f"pulling {LLAMA}" in result.stderr
        assert normalize(LLAMA) in server.models
        assert len(chats_for(server, LLAMA)) > 0
        (file,) = transcripts(out)
        assert records(file)[-1]["status"] == "success"


def test_pull_of_an_unknown_model_fails_without_chatting(tmp_path: Path) -> None:
    with FakeOllama.in_thread(models=[QWEN], pullable=[]) as server:
        out = tmp_path / "out"
        result = sparring("run", I_LOST, *on(server, "--out", out, "--pull"))
        assert result.returncode == 2
        no_traceback(result)
        assert LLAMA in result.stderr
        assert "file does not exist" in result.stderr
        assert server.requests == []
        assert transcripts(out) == []


def test_pulled_model_digest_is_recorded(tmp_path: Path) -> None:
    with FakeOllama.in_thread(models=[QWEN]) as server:
        out = tmp_path / "out"
        result = sparring("run", I_LOST, *on(server, "--out", out, "--pull", "--quiet"))
        assert result.returncode == 0, result.stderr
        digest = server.models[normalize(LLAMA)]["digest"]
    (file,) = transcripts(out)
    agents = {a["model"]: a for a in records(file)[0]["agents"]}
    assert agents[LLAMA]["model_digest"] == digest


def test_models_lists_what_the_server_has(fake: FakeOllama) -> None:
    result = sparring("models", *on(fake))
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    assert f"ollama at {fake.url}" in result.stdout
    assert QWEN in result.stdout and LLAMA in result.stdout
    assert fake.requests == []


# ---------------------------------------------------------------------------- errors

BROKEN = "broken:1b"
BROKEN_SCENARIO = f"""\
name: broken
agents:
  - name: x
    model: {BROKEN}
  - name: y
    model: {QWEN}
max_turns: 10
seed: 1
"""


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (Error(400, 'invalid option "mirostat": out of range'), "bad_request"),
        (Error(404, NOT_FOUND_MESSAGE.format(model=BROKEN)), "model_not_found"),
    ],
    ids=["400", "404"],
)
def test_final_error_mid_conversation_fails_only_that_conversation(
    error: Error, kind: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_SCENARIO, encoding="utf-8")
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=[QWEN, LLAMA, BROKEN]) as server:
        server.script(BROKEN, "Hello there.", error)
        result = sparring("run", I_LOST, broken, *on(server, "--out", out, "--backoff", "0.01"))
        assert len(chats_for(server, BROKEN)) == 2  # a final error is not retried
    assert result.returncode == 1
    no_traceback(result)
    by_scenario = {records(f)[0]["scenario"]: records(f) for f in transcripts(out)}
    assert sorted(by_scenario) == ["broken", "i-lost"]

    assert by_scenario["i-lost"][-1]["status"] == "success"
    assert by_scenario["i-lost"][-1]["outcome"]["winner"] == "qwen"

    lines = by_scenario["broken"]
    end = lines[-1]
    assert end["type"] == "end"
    assert end["status"] == "error"
    assert end["outcome"]["reason"] == "error"
    turns = lines[1:-1]
    # x spoke, y answered, x's second turn failed and was not written.
    assert [t["speaker"] for t in turns] == ["x", "y"]
    assert turns[0]["content"] == "Hello there."
    assert end["outcome"]["turn"] == 1
    assert end["error"]["kind"] == kind
    assert end["error"]["status"] == error.status
    assert end["error"]["model"] == BROKEN
    assert end["error"]["retryable"] is False
    assert end["error"]["attempts"] == 1
    assert "error" in result.stdout  # the summary shows the failure
    transcript = read_transcript(next(f for f in transcripts(out) if "broken" in f.name))
    assert transcript.status == "error"


@pytest.mark.parametrize(
    "failure",
    [Error(503, SERVER_BUSY_MESSAGE), MidStreamError(after_tokens=2), Drop(after_tokens=1)],
    ids=["503", "mid-stream-error", "dropped-connection"],
)
def test_retryable_errors_are_retried(failure: Action, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=[QWEN, LLAMA]) as server:
        server.script(QWEN, failure)  # qwen's first turn fails once
        result = sparring("run", I_LOST, *on(server, "--out", out, "--backoff", "0.01"))
        qwen_requests = chats_for(server, QWEN)
        expected_reply = server.reply_for(
            QWEN, qwen_requests[1]["messages"], qwen_requests[1]["options"]
        )
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    (file,) = transcripts(out)
    lines = records(file)
    turns, end = lines[1:-1], lines[-1]
    assert end["status"] == "success"
    assert turns[1]["speaker"] == "qwen"
    assert turns[1]["attempts"] == 2
    # The retried turn holds the whole second attempt, nothing of the failed one.
    assert turns[1]["content"] == expected_reply
    assert qwen_requests[0]["messages"] == qwen_requests[1]["messages"]
    assert all(t["attempts"] == 1 for t in turns[2:])
    assert end["totals"]["retries"] == 1


def test_no_server_at_all_is_one_readable_line(tmp_path: Path) -> None:
    host = nowhere()
    out = tmp_path / "out"
    result = sparring(
        "run",
        I_LOST,
        "--backend",
        "ollama",
        "--host",
        host,
        "--out",
        out,
        "--log-format",
        "console",
    )
    assert result.returncode == 2  # nothing could start
    no_traceback(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sparring: ")
    assert host in lines[0]
    assert "connect" in lines[0]
    assert transcripts(out) == []


# ---------------------------------------------------------------------------- show


def test_show_prints_speakers_and_outcome(played: Played) -> None:
    (file,) = transcripts(played.out)
    result = sparring("show", file)
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    assert "i-lost" in result.stdout
    assert "llama" in result.stdout and "qwen" in result.stdout
    assert CONCESSION in result.stdout
    assert "success" in result.stdout
    assert "qwen wins" in result.stdout
    assert "incomplete" not in result.stdout


def test_show_piped_keeps_each_persona_on_its_own_unwrapped_line(played: Played) -> None:
    (file,) = transcripts(played.out)
    result = sparring("show", file, file, COLUMNS="80")  # twice: a rule between the two
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(f"    persona: {PERSONA}\n") == 4
    assert max(len(line) for line in result.stdout.splitlines()) < 400


def test_show_a_truncated_transcript_says_it_is_incomplete(played: Played, tmp_path: Path) -> None:
    (file,) = transcripts(played.out)
    text = file.read_text(encoding="utf-8")
    body, last = text.rstrip("\n").rsplit("\n", 1)
    cut = tmp_path / file.name
    cut.write_text(body + "\n" + last[: len(last) // 2], encoding="utf-8")

    transcript = read_transcript(cut)
    assert transcript.truncated is True
    assert transcript.end is None

    result = sparring("show", cut)
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    assert "incomplete" in result.stdout
    assert "cut off" in result.stdout
    assert "llama" in result.stdout and "qwen" in result.stdout
    assert "qwen wins" not in result.stdout


def test_show_a_missing_transcript_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    result = sparring("show", path)
    assert result.returncode == 2
    no_traceback(result)
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"sparring: {path}: cannot read")


# ---------------------------------------------------------------------------- signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_turn_cancels_and_closes_the_transcript(
    signum: signal.Signals, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with (
        FakeOllama.in_thread(models=[QWEN, LLAMA], token_delay=0.05) as server,
        stdout.open("w") as out_f,
        stderr.open("w") as err_f,
    ):
        proc = subprocess.Popen(
            command("run", I_LOST, *on(server, "--out", out)),
            cwd=ROOT,
            env=env(),
            stdout=out_f,
            stderr=err_f,
        )
        try:
            wait_for(lambda: server.active > 0 and line_count(out) >= 2, "a turn in flight")
            proc.send_signal(signum)
            code = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    err_text = stderr.read_text()
    assert code == 130, err_text
    assert "Traceback" not in err_text
    assert "interrupted" in err_text
    (file,) = transcripts(out)
    lines = records(file)  # every line is whole JSON
    assert lines[0]["type"] == "run"
    assert lines[-1]["type"] == "end"
    assert lines[-1]["status"] == "cancelled"
    assert lines[-1]["outcome"]["reason"] == "cancelled"
    assert len(lines) < 9  # it stopped before the concession (7 turns)
    transcript = read_transcript(file)
    assert transcript.status == "cancelled"


def test_sigint_cancels_every_concurrent_conversation(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=[QWEN, LLAMA], token_delay=0.05) as server:
        proc = subprocess.Popen(
            command(
                "run", I_LOST, *on(server, "--out", out, "--repeat", "3", "--concurrency", "3")
            ),
            cwd=ROOT,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        code = interrupted(proc, lambda: server.active == 3, "three replies in flight")
    assert code == 130
    files = transcripts(out)
    assert len(files) == 3
    for file in files:
        lines = records(file)
        assert lines[-1]["type"] == "end"
        assert lines[-1]["status"] == "cancelled"


def test_killed_run_leaves_a_readable_incomplete_transcript(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOllama.in_thread(models=[QWEN, LLAMA], token_delay=0.03) as server:
        proc = subprocess.Popen(
            command("run", I_LOST, *on(server, "--out", out)),
            cwd=ROOT,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: line_count(out) >= 3, "two turns on disk")
            proc.send_signal(signal.SIGKILL)
            code = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == -signal.SIGKILL
    (file,) = transcripts(out)
    transcript = read_transcript(file)
    assert transcript.run.scenario == "i-lost"
    assert transcript.end is None
    assert transcript.status == "incomplete"
    assert len(transcript.turns) >= 2
    assert transcript.turns[0].scripted is True
    assert transcript.turns[-1].content != CONCESSION


# ---------------------------------------------------------------------------- schema


@pytest.mark.parametrize("what", ["scenario", "transcript"])
def test_schema_prints_the_json_schema_of_the_models(what: str, played: Played) -> None:
    result = sparring("schema", what)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    if what == "scenario":
        shipped = (ROOT / "scenarios" / "scenario.schema.json").read_text(encoding="utf-8")
        assert schema == json.loads(shipped)
        jsonschema.validate(yaml.safe_load(I_LOST.read_text(encoding="utf-8")), schema)
    else:
        for line in records(transcripts(played.out)[0]):  # what a real run wrote
            jsonschema.validate(line, schema)


def test_model_overrides_swap_models_without_editing_yaml(fake: FakeOllama, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = sparring("run", I_LOST, *on(fake, "--out", out, "--quiet", "--model", f"qwen={LLAMA}"))
    assert result.returncode == 0, result.stderr
    run = records(transcripts(out)[0])[0]
    assert [a["model"] for a in run["agents"]] == [LLAMA, LLAMA]
    assert run["overrides"] == {"models": {"qwen": LLAMA}}
    assert chats_for(fake, QWEN) == []
    typo = sparring("run", I_LOST, *on(fake, "--out", out, "--var", "topik=x", "--dry-run"))
    assert typo.returncode == 2 and "--var topik" in typo.stderr
