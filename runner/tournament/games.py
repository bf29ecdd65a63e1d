"""The games of a tournament: pairings, seat orders, stable ids and seeds, and each game's
scenario (the tournament's scenario with its seats filled by entrants)."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, replace

from agents.agent import Agent
from agents.errors import ConfigError
from runner.play.motion import draw_motion
from runner.play.seeds import derive_seed
from runner.scenario.debate import Sides
from runner.scenario.schema import ResolvedScenario, substitute
from runner.tournament.spec import Entrant, Tournament


@dataclass(frozen=True, slots=True)
class Game:
    id: str  # stable: the same game has the same id in every run of the tournament
    seats: tuple[str, str]  # entrant names, in the scenario's seat order
    number: int  # 0-based, among the games of this pairing and seat order
    seed: int

    @property
    def pairing(self) -> tuple[str, str]:
        first, second = sorted(self.seats)
        return first, second


def pairings(tournament: Tournament) -> list[tuple[str, str]]:
    """Unordered pairs of entrant names: every pair, or each challenger against the rest."""
    names = [e.name for e in tournament.entrants]
    if tournament.format == "gauntlet":
        pairs = {
            tuple(sorted((c, other)))
            for c in tournament.challengers
            for other in names
            if other != c
        }
        return sorted(pairs)  # type: ignore[arg-type]
    return [(a, b) for a, b in itertools.combinations(names, 2)]


def game_id(tournament: Tournament, seats: tuple[Entrant, Entrant], number: int) -> str:
    """Derived from what makes the game itself: the scenario, both entrants as defined (in
    seat order), the judge, the base seed and the game's number. Editing an unrelated part
    of the tournament (another entrant, more games) keeps the ids of the games it keeps."""
    judge = tournament.judge.definition() if tournament.judge else None
    text = json.dumps(
        {
            "scenario": tournament.scenario.hash,
            "seats": [e.definition() for e in seats],
            "judge": judge,
            "seed": tournament.seed,
            "number": number,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def all_games(tournament: Tournament) -> list[Game]:
    """Every game, in pairing, seat order and number order."""
    games = []
    for a, b in pairings(tournament):
        orders = [(a, b), (b, a)] if tournament.swap_seats else [(a, b)]
        for first, second in orders:
            seats = (tournament.entrant(first), tournament.entrant(second))
            for number in range(tournament.games):
                gid = game_id(tournament, seats, number)
                games.append(Game(gid, (first, second), number, derive_seed(tournament.seed, gid)))
    return games


def _persona(entrant: Entrant, seat: Agent) -> str:
    if entrant.persona is None:
        return seat.persona
    text, missing = substitute(entrant.persona, {"seat_persona": seat.persona})
    if missing:  # the file was checked; this is a bug, not bad input
        raise ConfigError(f"entrant {entrant.name}: undefined placeholders {missing}")
    return text


def game_scenario(tournament: Tournament, game: Game) -> ResolvedScenario:
    """The scenario with its seats filled: the speakers are the entrants' names, so every
    game's transcript reads alike whatever seat an entrant had."""
    scenario = tournament.scenario
    renamed: dict[str, str] = {}
    agents = []
    for seat, name in zip(scenario.agents, game.seats, strict=True):
        entrant = tournament.entrant(name)
        renamed[seat.name] = entrant.name
        agents.append(
            replace(
                seat,
                name=entrant.name,
                model=entrant.model,
                persona=_persona(entrant, seat),
                options=seat.options.merged(entrant.options),
            )
        )
    end = tuple(
        rule.model_copy(update={"speakers": [renamed[s] for s in rule.speakers]})
        if rule.speakers
        else rule
        for rule in scenario.end
    )
    phases = tuple(
        phase.model_copy(
            update={
                "speakers": [renamed[s] for s in phase.speakers],
                "script": {renamed[s]: line for s, line in phase.script.items()}
                if phase.script
                else None,
            }
        )
        for phase in scenario.phases
    )
    sides = scenario.sides
    if sides is not None:  # sides go with the seats: swapping seats swaps sides
        sides = Sides(proposition=renamed[sides.proposition], opposition=renamed[sides.opposition])
    # The scenario's own hash is kept: every game of the tournament is "the same scenario".
    return replace(
        scenario,
        agents=tuple(agents),
        end=end,
        phases=phases,
        sides=sides,
        repeat=1,
        seed=game.seed,
    )


def game_motion(tournament: Tournament, game: Game) -> str | None:
    """The motion of a game: drawn per pairing and game number, so both seat orders of a
    pairing debate the same motion, each side argued once by each entrant."""
    motions = tournament.scenario.motions
    if not motions:
        return None
    return draw_motion(motions, derive_seed(tournament.seed, *game.pairing, game.number))


def seat_names(tournament: Tournament, game: Game) -> dict[str, str]:
    """Seat (the scenario's agent name) -> entrant."""
    return dict(zip(tournament.seats, game.seats, strict=True))


def models(tournament: Tournament, game: Game) -> frozenset[str]:
    """The models a game needs loaded: its entrants', and a model-backed moderator's."""
    seated = {tournament.entrant(name).model for name in game.seats}
    return frozenset(seated | set(tournament.scenario_models()))
