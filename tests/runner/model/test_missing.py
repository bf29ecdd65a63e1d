"""Missing models explained: what was tried, what the engine has, what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.backends import Choice
from agents.backends.base import ProgressCallback
from agents.backends.scripted import ScriptedBackend
from agents.errors import ConfigError, ModelNotFound
from runner.model.pool import BackendPool
from runner.run.plan import RunPlan, preflight
from runner.scenario.schema import load_scenario
from tests.cli import offline

GAME = """\
name: game
agents:
  - {name: llama, model: llama3.2:1b}
  - {name: qwen, model: qwen:0.5b}
"""


class Store(ScriptedBackend):
    """An engine that has some models and cannot download others."""

    def __init__(self, models: list[str]) -> None:
        super().__init__(models=models, host="box")
        self.name = "local"
        self.can_pull = False

    async def pull(self, model: str, progress: ProgressCallback) -> None:
        raise ModelNotFound("the embedded engine cannot download models", model=model)


async def problems(path: Path, backend: ScriptedBackend, choice: Choice, pull: bool) -> list[str]:
    run = RunPlan([load_scenario(path)])
    pool = BackendPool.fixed(backend)
    await run.bind(pool)
    for model in run.models():
        model.choice = choice
    with pytest.raises(ConfigError) as info:
        await preflight(run, pull=pull)
    return info.value.problems


async def test_says_what_was_tried_what_is_there_and_what_to_do(tmp_path: Path) -> None:
    game = tmp_path / "game.yaml"
    game.write_text(GAME, encoding="utf-8")
    (tmp_path / "game-builtin.yaml").write_text(GAME, encoding="utf-8")
    fallback = Choice(
        "local",
        "no ollama server answered at http://127.0.0.1:11434; using the embedded engine",
        alternative="start ollama (`ollama serve`) and run again",
    )
    lines = await problems(game, Store(["smollm2:135m", "gemma3:270m"]), fallback, pull=True)
    assert lines == [
        f"{game}: the embedded engine does not have llama3.2:1b, qwen:0.5b",
        "  llama3.2:1b, qwen:0.5b: model not found; pull it",
        "  engine: no ollama server answered at http://127.0.0.1:11434; using the embedded engine",
        "  it has: gemma3:270m, smollm2:135m",
        "  to play anyway: --model gemma3:270m (every agent), or --model llama=gemma3:270m "
        f"--model qwen=smollm2:135m; or {tmp_path / 'game-builtin.yaml'} (the same scenario on "
        "the built-in models); or start ollama (`ollama serve`) and run again",
        "  --pull: the embedded engine cannot download models",
    ]


async def test_an_engine_with_nothing_says_so(tmp_path: Path) -> None:
    game = tmp_path / "game.yaml"
    game.write_text(GAME, encoding="utf-8")
    lines = await problems(game, Store([]), Choice("local", "--backend local"), pull=False)
    assert lines[-2:] == ["  engine: --backend local", "  it has: no models"]
    assert not any("--pull" in line or "to play anyway" in line for line in lines)


def test_the_classroom_game_without_ollama_says_what_to_do(tmp_path: Path) -> None:
    """The whole message, from the CLI, as a person without ollama sees it."""
    result = offline(
        "run", "scenarios/i-lost.yaml", "--pull", "--out", tmp_path,
        OLLAMA_MODELS=str(tmp_path / "store"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "sparring: scenarios/i-lost.yaml: the embedded engine does not have llama3.2:1b, qwen:0.5b"
    )
    assert all(line.startswith("  ") for line in lines[1:]), result.stderr
    text = result.stderr
    assert "no ollama server answered at http://127.0.0.1:9" in text
    assert "it has: smollm2:135m" in text
    assert "--model smollm2:135m (every agent)" in text
    assert "start ollama" in text
    assert "--pull: the embedded engine cannot download models" in text
    assert "Traceback" not in text and len(lines) <= 7
    assert not list(tmp_path.glob("*.jsonl"))
