"""Playing tournaments against the fake ollama server: results exactly once, models
scheduled in blocks, faults survived, a server that goes away waited for, games judged."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.errors import ConfigError
from runner.model.generate import RetryPolicy
from runner.settings import RunSettings
from runner.tournament import standings
from runner.tournament.games import all_games, models
from runner.tournament.ledger import RESULTS, read_results
from runner.tournament.play import PlaySettings, TournamentObserver, play
from runner.tournament.ratings import leaderboard
from runner.tournament.schedule import load_lower_bound, turn_lower_bound
from runner.tournament.spec import load_tournament
from runner.tournament.standings import decided, entrant_models, played_turns
from runner.transcript import read_transcript
from tests.fakes.ollama_server import SERVER_BUSY_MESSAGE, Drop, Error, FakeOllama, MidStreamError
from tests.runner.tournament.helpers import write_tournament

FAST = RetryPolicy(attempts=4, base=0.01)
MODELS = ["m1", "m2", "m3", "m4"]
LOAD_S = 0.06  # a fake model load: long enough for its replies to count it (LOAD_MS)


class Scheduling(TournamentObserver):
    """Keeps the lines a run starts with: how each server is scheduled."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def scheduling(self, lines: list[str]) -> None:
        self.lines.extend(lines)


def settings(out: Path, url: str, **extra: Any) -> PlaySettings:
    run = RunSettings(out_dir=out, backend="ollama", hosts=(url,), retry=FAST, concurrency=2)
    return PlaySettings(out=out, run=run, **extra)


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / RESULTS).read_text().splitlines()]


async def test_a_round_robin_plays_every_game_once_and_rates_them(tmp_path: Path) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS[:3], games=2))
    out = tmp_path / "out"
    async with FakeOllama(MODELS) as fake:
        outcome = await play(t, settings(out, fake.url))
    planned = {g.id for g in all_games(t)}
    lines = results(out)
    assert sorted(r["game_id"] for r in lines) == sorted(planned)  # each once
    assert len(outcome.recorded) == len(planned) == 12
    for r in lines:
        transcript = read_transcript(out / r["transcript"])
        assert transcript.run is not None and transcript.run.game_id == r["game_id"]
        assert transcript.run.tournament_hash == t.hash and r["tournament_hash"] == t.hash
        assert [a.name for a in transcript.run.agents] == list(r["seats"].values())
        assert {turn.speaker for turn in transcript.turns} <= set(r["pairing"])
        assert r["status"] == "success" and r["decided_by"] == "end_rule"
        assert (r["winner"], r["loser"]) == (
            transcript.end.outcome.winner,
            transcript.end.outcome.loser,
        )
    definition, counted = read_results(out)
    games, _ = decided(counted, definition["seats"])
    board = leaderboard(games, MODELS[:3], rounds=50)
    assert sum(s.games for s in board.entrants) == 2 * 12


async def test_max_loaded_overrides_learning_and_blocks_meet_the_lower_bound(
    tmp_path: Path,
) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS, games=2))
    out = tmp_path / "out"
    async with FakeOllama(MODELS, max_loaded=3, load_delay=LOAD_S) as fake:
        outcome = await play(t, settings(out, fake.url, max_loaded=3))
        residency = fake.residency
    assert residency.most_loaded <= 3
    bound = load_lower_bound([models(t, g) for g in all_games(t)], 3)
    assert bound == 5
    assert sum(residency.loads.values()) == outcome.loads == bound  # the server agrees
    assert residency.evictions == 0  # sparring unloads what it evicts, before loading
    assert len(results(out)) == len(all_games(t))
    keep = [r.get("keep_alive") for r in fake.requests if r.get("messages")]
    assert set(keep) == {"30m"}  # blocks hold their models between requests
    empty = [r for r in fake.requests if not r.get("messages")]
    assert {r["keep_alive"] for r in empty} == {"30m", 0}  # loaded ahead, and released
    [server] = outcome.servers
    assert server.describe() == "kept at most 3 models loaded (--max-loaded)"


@pytest.mark.parametrize("holds", [1, 2, 3])
async def test_with_default_flags_it_learns_what_the_server_holds(
    holds: int, tmp_path: Path
) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS, games=1))
    out = tmp_path / "out"
    lines: list[str] = []
    async with FakeOllama(MODELS, max_loaded=holds, load_delay=LOAD_S) as fake:
        outcome = await play(t, settings(out, fake.url), Scheduling(lines))
        residency = fake.residency
    [server] = outcome.servers
    assert server.holds == holds  # learned, from what the server said
    assert lines == [f"server {fake.url}: how many models it holds is learned while playing "
                     "(from /api/ps)"]  # fmt: skip
    assert residency.most_loaded <= holds
    loads = sum(residency.loads.values())
    assert outcome.loads == loads  # counted as the server counts them
    assert len(results(out)) == len(all_games(t)) == 12
    if holds >= 2:
        assert loads <= load_lower_bound([models(t, g) for g in all_games(t)], holds) + 1
        assert residency.evictions == 1  # the server evicted once: when its limit was learned
        assert re.fullmatch(
            rf"holds {holds} models \(learned: m\d evicted when a (third|fourth) model "
            r"\(m\d\) loaded at [-\dT:]+Z\)",
            server.describe(),
        )
    else:
        # A server holding one model loads one for every turn: the gate plays the games'
        # turns a model at a time, every load serving each game waiting for its model.
        definition, played = read_results(out)
        assert {r.alternates for r in played} == {True}  # a duel's turns alternate
        bound = turn_lower_bound(played_turns(played, entrant_models(definition)))
        [said] = standings.status(out).servers  # status gives the bound, from the turns
        assert said.lower_bound == bound and said.bound_from_turns
        assert loads <= bound + 1


async def test_what_was_learned_is_kept_and_a_resumed_run_starts_from_it(tmp_path: Path) -> None:
    path = write_tournament(tmp_path / "t", MODELS[:3], games=1)
    out = tmp_path / "out"
    lines: list[str] = []
    async with FakeOllama(MODELS, max_loaded=2, load_delay=LOAD_S) as fake:
        first = await play(load_tournament(path), settings(out, fake.url))
        assert fake.residency.evictions == 1  # learning: the server evicted once
        write_tournament(tmp_path / "t", MODELS, games=1)  # one more entrant
        t = load_tournament(path)
        second = await play(t, settings(out, fake.url, accept_changes=True), Scheduling(lines))
        assert fake.residency.evictions == 1  # known from the start: sparring made the room
        loads = sum(fake.residency.loads.values())
    [line] = lines
    assert line.startswith(f"server {fake.url}: holds 2 models (learned: ")
    assert first.loads + second.loads == loads
    state = standings.status(out)
    [server] = state.servers
    assert (server.capacity.holds, server.capacity.loads) == (2, loads)
    assert server.lower_bound == load_lower_bound([models(t, g) for g in all_games(t)], 2)
    assert state.to_dict()["servers"][0]["holds"] == 2


async def test_other_clients_models_are_left_to_the_server(tmp_path: Path) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS, games=1))
    out = tmp_path / "out"
    lines: list[str] = []
    async with FakeOllama([*MODELS, "other:7b"], max_loaded=3, load_delay=LOAD_S) as fake:
        async with httpx.AsyncClient(base_url=fake.url) as client:  # someone else's model
            body = {"model": "other:7b", "messages": [], "keep_alive": "1h"}
            (await client.post("/api/chat", json=body)).raise_for_status()
        outcome = await play(t, settings(out, fake.url), Scheduling(lines))
        residency = fake.residency
    [server] = outcome.servers
    assert server.holds == 3
    assert "other clients' models seen: other:7b" in lines[0]
    assert residency.evicted["other:7b"] == 1  # the server made room with it, not sparring
    assert (
        sum(residency.loads.values()) - 1
        <= load_lower_bound([models(t, g) for g in all_games(t)], 3) + 1
    )


async def test_models_load_with_the_options_their_games_send(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    write_tournament(folder, MODELS[:3])
    path = folder / "cup.yaml"
    text = path.read_text().replace(
        "  - m1\n", "  - {name: m1, model: m1, options: {num_ctx: 2048}}\n"
    )
    path.write_text(text)
    t = load_tournament(path)
    out = tmp_path / "out"
    async with FakeOllama(MODELS, max_loaded=3, load_delay=LOAD_S) as fake:
        outcome = await play(t, settings(out, fake.url))
        loads = sum(fake.residency.loads.values())
        preloads = [r for r in fake.requests if r["model"] == "m1" and not r.get("messages")]
    assert loads == outcome.loads == 3  # not loaded again for the first game's num_ctx
    loading = [r for r in preloads if r.get("keep_alive") != 0]
    assert loading and all(r["options"]["num_ctx"] == 2048 for r in loading)


async def test_faults_are_survived_with_nothing_lost(tmp_path: Path) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS[:3], games=1))
    out = tmp_path / "out"
    async with FakeOllama(MODELS) as fake:
        fake.script(
            None,
            Error(503, SERVER_BUSY_MESSAGE),
            Drop(after_tokens=1),
            MidStreamError(after_tokens=2),
            Error(500, "runner stopped"),
        )
        await play(t, settings(out, fake.url))
    lines = results(out)
    assert len(lines) == len({r["game_id"] for r in lines}) == 6
    assert {r["status"] for r in lines} == {"success"}
    retried = [
        turn
        for r in lines
        for turn in read_transcript(out / r["transcript"]).turns
        if turn.attempts > 1
    ]
    # Each fault cost one attempt of some turn (a turn may meet two in a row).
    assert sum(len(turn.attempt_errors) for turn in retried) == 4
    assert all(turn.attempts == len(turn.attempt_errors) + 1 for turn in retried)


class Outage(TournamentObserver):
    """Stops the server after a few results; starts it again when the tournament pauses."""

    def __init__(self, fake: FakeOllama, after: int) -> None:
        self.fake, self.after, self.seen = fake, after, 0
        self.pauses = 0
        self.tasks: list[asyncio.Task[Any]] = []
        self.replacement: FakeOllama | None = None

    def recorded(self, result: Any) -> None:
        self.seen += 1
        if self.seen == self.after:
            self.tasks.append(asyncio.create_task(self.fake.stop()))

    def paused(self, host: str, message: str, wait: float) -> None:
        self.pauses += 1
        if self.replacement is None:
            self.replacement = FakeOllama(MODELS, port=self.fake.port, token_delay=0.002)
            self.tasks.append(asyncio.create_task(self.replacement.start()))


async def test_a_server_that_goes_away_is_waited_for(tmp_path: Path) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS[:3], games=2))
    out = tmp_path / "out"
    fake = FakeOllama(MODELS, token_delay=0.002)
    await fake.start()
    outage = Outage(fake, after=3)
    try:
        await asyncio.wait_for(play(t, settings(out, fake.url), outage), 60)
    finally:
        await asyncio.gather(*outage.tasks)
        if outage.replacement is not None:
            await outage.replacement.stop()
    assert outage.pauses >= 1
    lines = results(out)
    assert sorted(r["game_id"] for r in lines) == sorted(g.id for g in all_games(t))
    assert {r["status"] for r in lines} == {"success"}  # none burnt as an error
    for r in lines:
        assert read_transcript(out / r["transcript"]).status == "success"


JUDGE = "judge:1b"


@pytest.mark.parametrize(
    ("replies", "decision"),
    [
        (['{"winner": "first", "reason": "a"}', '{"winner": "second", "reason": "b"}'], "seat0"),
        (['{"winner": "first", "reason": "a"}', '{"winner": "first", "reason": "b"}'], "draw"),
        (['{"winner": "draw", "reason": "a"}', '{"winner": "draw", "reason": "b"}'], "draw"),
        (["no json", "{}", "[]", '{"winner": "second", "reason": "b"}'], "none"),
    ],
    ids=["agree", "disagree", "both-draw", "no-verdict"],
)
async def test_the_judge_decides_undecided_games_in_both_orders(
    replies: list[str], decision: str, tmp_path: Path
) -> None:
    extra = f"judge: {{model: {JUDGE}, when: undecided}}\n"
    t = load_tournament(
        write_tournament(tmp_path / "t", MODELS[:2], games=1, swap=False, max_turns=3, extra=extra)
    )
    out = tmp_path / "out"
    async with FakeOllama([*MODELS, JUDGE], concede_after=None) as fake:
        fake.script(JUDGE, *replies)
        await play(t, settings(out, fake.url))
        judge_requests = [r for r in fake.requests if r.get("model") == JUDGE and r.get("messages")]
    [r] = results(out)
    transcript = read_transcript(out / r["transcript"])
    assert transcript.end is not None and transcript.end.outcome.reason == "max_turns"
    orders = [v.order for v in transcript.verdicts]
    assert sorted(orders) == ["as_seated", "swapped"] and len(r["judge"]) == 2
    assert all(
        req["format"]["properties"]["winner"]["enum"] == ["first", "second", "draw"]
        for req in judge_requests
    )
    prompt = judge_requests[0]["messages"][-1]["content"]
    assert "Speaker 1" in prompt and "m1" not in prompt and "m2" not in prompt  # anonymised
    seat0 = r["seats"]["opener"]
    if decision == "seat0":
        assert (r["decided_by"], r["winner"], r["draw"]) == ("judge", seat0, False)
    elif decision == "draw":
        assert (r["decided_by"], r["winner"], r["draw"]) == ("judge", None, True)
    else:
        assert r["decided_by"] == "max_turns" and r["draw"]  # never guessed
        bad = next(v for v in transcript.verdicts if v.winner is None)
        assert bad.error and bad.attempts == 3 and bad.raw == "[]"


async def test_max_errors_stops_the_tournament(tmp_path: Path) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS[:3], games=2))
    out = tmp_path / "out"
    async with FakeOllama(MODELS) as fake:
        fake.script(None, *[Error(400, "bad request")] * 50)
        outcome = await play(t, settings(out, fake.url, max_errors=2))
    assert outcome.stopped is not None and "max-errors" in outcome.stopped
    assert 2 <= len([r for r in results(out) if r["status"] == "error"]) < len(all_games(t))


async def test_the_report_of_a_tournament_folder_carries_its_leaderboard(tmp_path: Path) -> None:
    from runner.analysis.leaderboard import find_leaderboard
    from runner.tournament.standings import folder_leaderboard

    t = load_tournament(write_tournament(tmp_path / "t", MODELS[:3], games=1))
    out = tmp_path / "out"
    assert find_leaderboard([out]) is None
    async with FakeOllama(MODELS) as fake:
        await play(t, settings(out, fake.url))
    rows = find_leaderboard([out])
    assert rows is not None
    expected = folder_leaderboard(out).to_dict()["entrants"]
    assert [row.model_dump() for row in rows] == expected


async def test_a_tournament_folders_report_leaves_out_games_set_aside(tmp_path: Path) -> None:
    from runner.analysis.frames import load_frames

    t = load_tournament(write_tournament(tmp_path / "t", MODELS[:2], games=1))
    out = tmp_path / "out"
    async with FakeOllama(MODELS) as fake:
        await play(t, settings(out, fake.url))
    # What a game cut off mid-way leaves: its run line and a turn, moved aside and replayed.
    game = next((out / "games").glob("*.jsonl"))
    records = [json.loads(line) for line in game.read_text().splitlines()[:2]]
    (out / "aside").mkdir()
    (out / "aside" / game.name).write_text(
        "".join(json.dumps({**r, "conversation_id": "0123456789ab"}) + "\n" for r in records)
    )
    assert read_transcript(out / "aside" / game.name).run is not None
    frames = load_frames([out])
    assert sorted(frames.conversations["path"]) == sorted(
        str(p) for p in (out / "games").glob("*.jsonl")
    )
    assert len(load_frames([out / "aside"]).conversations) == 1  # asked for by name: read


def test_a_verdict_with_a_raw_newline_in_its_reason_still_counts() -> None:
    from runner.tournament.judge import parse

    assert parse('{"winner": "second", "reason": "line one\nline two"}') == (
        "second",
        "line one\nline two",
    )
    assert parse('{"winner": "nobody", "reason": "x"}') is None
    assert parse('{"winner": "first"}') is None


async def test_a_tournament_on_an_openai_compatible_server(tmp_path: Path) -> None:
    from tests.fakes.openai_server import FakeOpenAI

    t = load_tournament(write_tournament(tmp_path / "t", MODELS[:3], games=1, max_turns=4))
    out = tmp_path / "out"
    lines: list[str] = []
    async with FakeOpenAI(models=MODELS) as fake:
        run = RunSettings(out_dir=out, backend="openai", hosts=(fake.url,), retry=FAST)
        outcome = await play(t, PlaySettings(out=out, run=run), Scheduling(lines))
        chats = fake.chat_requests
    assert len(outcome.recorded) == 6 and {r.status for r in outcome.recorded} == {"success"}
    assert {r.body["model"] for r in chats} == set(MODELS[:3])
    assert all("keep_alive" not in r.body for r in chats)  # an ollama knob: not sent
    [server] = outcome.servers
    assert "cannot be read (openai): scheduled without residency knowledge" in server.describe()
    assert lines == [f"server {server.server}: {server.describe(3)}"]  # the run's first line


async def test_the_files_backend_is_used_and_the_command_line_overrides_it(
    tmp_path: Path,
) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS[:2], extra="backend: local\n"))
    out = tmp_path / "out"
    async with FakeOllama(MODELS) as fake:
        # An ollama server answers, but the file asks for the embedded engine, which has no m1.
        run = RunSettings(out_dir=out, hosts=(fake.url,), retry=FAST)
        with pytest.raises(ConfigError, match=r"local at .*'m1' not found"):
            await play(t, PlaySettings(out=out, run=run))
        assert fake.requests == []
        overridden = replace(run, backend="ollama")
        outcome = await play(t, PlaySettings(out=out, run=overridden))
    assert {r.status for r in outcome.recorded} == {"success"}
    for r in outcome.recorded:
        transcript = read_transcript(out / r.transcript)
        assert transcript.run is not None and transcript.run.backend == "ollama"


async def test_two_hosts_share_the_work_each_within_its_limit(tmp_path: Path) -> None:
    t = load_tournament(write_tournament(tmp_path / "t", MODELS, games=2))
    out = tmp_path / "out"
    async with (
        FakeOllama(MODELS, max_loaded=2, load_delay=LOAD_S) as one,
        FakeOllama(MODELS, max_loaded=3, load_delay=LOAD_S) as two,
    ):
        run = RunSettings(out_dir=out, backend="ollama", hosts=(one.url, two.url), retry=FAST)
        outcome = await play(t, PlaySettings(out=out, run=run))
        served = [len([r for r in fake.requests if r.get("messages")]) for fake in (one, two)]
        most = [fake.residency.most_loaded for fake in (one, two)]
        loads = sum(sum(fake.residency.loads.values()) for fake in (one, two))
    assert sorted(r["game_id"] for r in results(out)) == sorted(g.id for g in all_games(t))
    assert all(n > 0 for n in served)  # both servers worked
    assert most[0] <= 2 and most[1] <= 3  # neither held more than it can
    learned = {s.server: s for s in outcome.servers}
    assert learned[one.url].holds == 2  # each learned on its own
    assert learned[two.url].at_least <= 3 and learned[two.url].holds in (None, 3)
    assert outcome.loads == loads
