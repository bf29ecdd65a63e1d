"""A debate for the report's tests, played on the scripted engine and written by the real
writer: a moderator, two phases with a word budget, and a jury voting before and after."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.backends.base import ChatRequest
from agents.backends.scripted import ScriptedBackend
from runner.model.generate import RetryPolicy
from runner.model.pool import BackendPool
from runner.play.conversation import Conversation
from runner.run.plan import RunPlan
from runner.scenario.schema import scenario_from_data
from runner.settings import RunSettings

HOSTILE_MOTION = "<img src=x onerror=\"window.__pwned='motion'\"> tea beats coffee"
HOSTILE_REASON = "<script>window.__pwned='reason'</script>"

DEBATE: dict[str, Any] = {
    "name": "house",
    "motions": [HOSTILE_MOTION],
    "agents": [
        {"name": "Ada", "model": "ma", "persona": "You are the {side}."},
        {"name": "Max", "model": "mb", "persona": "You are the {side}."},
    ],
    "sides": {"proposition": "Ada", "opposition": "Max"},
    "moderator": {"name": "Chair", "announce": "{phase}. {speakers}, the floor is yours."},
    "phases": [
        {
            "name": "Openings",
            "speakers": ["proposition", "opposition"],
            "instruction": "OPEN now.",
            "budget": {"words": 3},
        },
        {"name": "Closings", "speakers": ["opposition", "proposition"], "instruction": "CLOSE."},
    ],
    # juror "ma" plays Ada's model: its votes are flagged self_judged.
    "jury": {"judges": ["j1", "ma"], "vote": ["before", "after"]},
    "seed": 5,
}


def reply(request: ChatRequest) -> str:
    system = str(request.messages[0]["content"])
    if "Answer with JSON only" in system:  # a judge: against before the debate, for after
        before = "has not begun" in system
        return json.dumps({"vote": "against" if before else "for", "reason": HOSTILE_REASON})
    text = " ".join(str(m["content"]) for m in request.messages)
    # Openings run over their three-word budget; closings are short.
    return "one two three four five" if text.rfind("OPEN") > text.rfind("CLOSE") else "one two"


async def play_scripted(
    folder: Path, data: dict[str, Any], reply: Callable[[ChatRequest], str]
) -> Path:
    """Play the scenario ``data`` once on the scripted engine, each reply ``reply``'s;
    its transcript."""
    settings = RunSettings(out_dir=folder, retry=RetryPolicy(attempts=1, base=0.001))
    run = RunPlan([scenario_from_data(data)])
    await run.bind(BackendPool.fixed(ScriptedBackend(fallback=reply), settings))
    result = await Conversation(next(iter(run)), settings, run_id="r").run()
    return Path(result.path)


async def play_debate(folder: Path) -> Path:
    return await play_scripted(folder, DEBATE, reply)
