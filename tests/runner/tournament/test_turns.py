"""The gate that orders many games' turns a model at a time, for a one-model server."""

from __future__ import annotations

import asyncio
import itertools

from runner.tournament.schedule import turn_lower_bound
from runner.tournament.turns import TurnGate


class Server:
    """Stands in for a server holding one model: counts the loads its requests cause."""

    def __init__(self) -> None:
        self.loaded: str | None = None
        self.loads = 0
        self.running: list[str] = []
        self.mixed = False  # requests of two models ever ran at once

    async def reply(self, model: str) -> None:
        self.running.append(model)
        self.mixed |= len(set(self.running)) > 1
        if model != self.loaded:
            self.loaded, self.loads = model, self.loads + 1
        await asyncio.sleep(0)  # other games run while this one's reply is generated
        self.running.remove(model)


async def play(gate: TurnGate, server: Server, turns: list[str]) -> list[str]:
    gate.enter()
    said = []
    try:
        for model in turns:
            async with gate.turn(model):
                await server.reply(model)
            said.append(model)
    finally:
        gate.leave()
    return said


def round_robin(models: str, turns: int) -> list[list[str]]:
    games = []
    for x, y in itertools.combinations(models, 2):
        for first, second in ((x, y), (y, x)):
            games.append(([first, second] * turns)[:turns])
    return games


async def test_games_turns_go_a_model_at_a_time_in_rounds_of_the_models() -> None:
    gate, server = TurnGate(), Server()
    gate.set_active(True)
    games = round_robin("abcd", 6)
    said = await asyncio.gather(*(play(gate, server, g) for g in games))
    assert said == games  # every game got each of its turns, in its order
    assert not server.mixed
    assert server.loads == len(gate.turns)  # one load per turn of the gate, no more
    # Rounds of the models: no model again before every other model waiting had its turn.
    assert gate.turns[:4] == sorted(set(gate.turns[:4]))
    assert all(len(set(gate.turns[i : i + 4])) == 4 for i in range(len(gate.turns) - 6))
    # Each load served a turn of every game waiting for it: the bound over every order
    # (15 here), where games one after the other would need 72.
    bound = turn_lower_bound([(frozenset(g), g[0], len(g)) for g in games])
    assert bound == 15 and server.loads == bound


async def test_left_open_requests_run_as_they_come() -> None:
    gate, server = TurnGate(), Server()
    games = round_robin("abc", 4)
    said = await asyncio.gather(*(play(gate, server, g) for g in games))
    assert said == games
    assert server.mixed  # nothing held them apart
    assert gate.turns == []


async def test_turned_off_while_requests_wait_lets_them_through() -> None:
    gate = TurnGate()
    gate.set_active(True)
    gate.enter()
    gate.enter()
    inside = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with gate.turn("a"):
            inside.set()
            await release.wait()

    async def second() -> str:
        async with gate.turn("b"):
            return "b ran"

    one = asyncio.create_task(first())
    await inside.wait()
    two = asyncio.create_task(second())
    await asyncio.sleep(0)
    assert not two.done()  # b waits while a runs
    gate.set_active(False)
    assert await two == "b ran"  # the gate off: it goes through at once
    release.set()
    await one
    assert gate.running == 0


async def test_a_waiting_request_cancelled_does_not_hold_the_others() -> None:
    gate = TurnGate()
    gate.set_active(True)
    for _ in range(3):
        gate.enter()
    inside, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with gate.turn("a"):
            inside.set()
            await release.wait()

    async def asker(model: str) -> str:
        async with gate.turn(model):
            return model

    held = asyncio.create_task(holder())
    await inside.wait()
    doomed = asyncio.create_task(asker("b"))
    await asyncio.sleep(0)
    doomed.cancel()
    gate.leave()  # the cancelled game leaves
    later = asyncio.create_task(asker("c"))
    await asyncio.sleep(0)
    release.set()
    await held
    gate.leave()  # the holder's game is over
    assert await later == "c"
    assert "b" not in gate.waiting and gate.turns == ["a", "c"]
