"""One piece of tournament work on one host: a game played, or a game judged."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from agents.backends.config import GenerateConfig
from runner.play.conversation import Conversation, Plan, Result
from runner.play.events import Observer, Observers
from runner.scenario.schema import ResolvedScenario
from runner.settings import RunSettings
from runner.tournament.games import Game, all_games, game_motion, game_scenario, models
from runner.tournament.hosts import Host
from runner.tournament.judge import judge_game
from runner.tournament.ledger import Ledger
from runner.tournament.spec import Tournament
from runner.transcript import TranscriptWriter, read_transcript

KEEP_ALIVE = "30m"  # holds a block's models between its requests; released explicitly
# A shorter keep-alive marks the model to evict first, should the server have to: ollama
# evicts the idle model with the shortest one.
EXPENDABLE_KEEP_ALIVE = "29m"


@dataclass(slots=True)
class Judging:
    game: Game
    transcript: Path


@dataclass(frozen=True, slots=True)
class Workshop:
    """What playing and judging need, shared by every piece of work of one run."""

    tournament: Tournament
    settings: RunSettings  # out_dir: the tournament's games folder
    run_id: str
    observer: Observer

    def scenario(self, game: Game, host: Host) -> ResolvedScenario:
        scenario = game_scenario(self.tournament, game)
        if "keep_alive" not in host.backend.supported_options:
            return scenario
        # Hold the block's models between requests; the scheduler unloads them itself.
        held = {"keep_alive": KEEP_ALIVE}
        agents = tuple(
            replace(a, options=a.options.model_copy(update=held)) for a in scenario.agents
        )
        # A debate's chair and jury speak with the block's models held too.
        moderator, jury = scenario.moderator, scenario.jury
        if moderator is not None:
            moderator = moderator.model_copy(
                update={"options": moderator.options.model_copy(update=held)}
            )
        if jury is not None:
            jury = jury.model_copy(update={"options": jury.options.model_copy(update=held)})
        return replace(scenario, agents=agents, moderator=moderator, jury=jury)

    def plan(self, game: Game, host: Host, ledger: Ledger) -> Plan:
        scenario = self.scenario(game, host)
        return Plan(
            scenario=scenario,
            repeat_index=game.number,
            seed=game.seed,
            base_seed=self.tournament.seed,
            models={a.name: host.models[a.model] for a in scenario.voices},
            stem=ledger.transcript_stem(game),
            motion=game_motion(self.tournament, game),
            labels={
                "tournament": self.tournament.name,
                "tournament_hash": self.tournament.hash,
                "game_id": game.id,
            },
        )

    async def play(
        self, game: Game, host: Host, ledger: Ledger, observer: Observer | None = None
    ) -> Result:
        conversation = Conversation(
            self.plan(game, host, ledger),
            self.settings,
            run_id=self.run_id,
            observer=Observers(self.observer, observer) if observer else self.observer,
        )
        return await conversation.run()

    def load_config(self, model: str, host: Host, keep_alive: str | None = None) -> GenerateConfig:
        """The options ``model``'s requests will carry on ``host``, to load it with: a
        request whose load-time options (num_ctx) differ makes the server load it again."""
        config: GenerateConfig | None = None
        judge = self.tournament.judge
        for game in all_games(self.tournament):
            if model in models(self.tournament, game):
                scenario = self.scenario(game, host)
                # A model only the scenario brings (the chair's, a judge's) is a voice's.
                config = next(a.options for a in scenario.voices if a.model == model)
                break
        if config is None and judge is not None and judge.model == model:
            config = judge.options.model_copy(update={"keep_alive": KEEP_ALIVE})
        config = config or GenerateConfig(keep_alive=KEEP_ALIVE)
        if keep_alive is not None:
            config = config.model_copy(update={"keep_alive": keep_alive})
        return config

    async def judge(self, judging: Judging, host: Host) -> Path:
        """Ask the judge for the verdicts the game's transcript lacks; append them to it."""
        judge = self.tournament.judge
        assert judge is not None
        transcript = read_transcript(judging.transcript)
        have = {v.order for v in transcript.verdicts}
        missing = [o for o in ("as_seated", "swapped") if o not in have]
        options = judge.options
        if "keep_alive" in host.backend.supported_options:
            options = options.model_copy(update={"keep_alive": KEEP_ALIVE})
        verdicts = await judge_game(
            host.models[judge.model],
            replace(judge, options=options),
            transcript,
            seed=judging.game.seed,
            orders=missing,  # type: ignore[arg-type]
        )
        writer = TranscriptWriter.append(judging.transcript)
        try:
            for verdict in verdicts:
                writer.write(verdict)
        finally:
            writer.close()
        return judging.transcript
