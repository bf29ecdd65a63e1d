"""Missing models, explained: what was tried, what is there, and what to do.

The preflight collects every model an engine does not have; this module turns them into a
few lines per engine, for a person who has just typed ``sparring run``:

    scenarios/i-lost.yaml: the embedded engine does not have llama3.2:1b, qwen:0.5b
      llama3.2:1b, qwen:0.5b: not a built-in, a .gguf file or a model in the ollama store ...
      engine: no ollama server answered at http://127.0.0.1:11434; using the embedded engine
      it has: smollm2:135m, gemma3:270m
      to play anyway: --model smollm2:135m (every agent), or --model llama=smollm2:135m ...

Each backend words its own part (``ModelNotFound.hint`` from ``find_model``, its model
list, the reason and alternative of the ``auto`` choice); this module only arranges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agents.backends import Choice, engine_label
from agents.backends.base import Backend
from agents.errors import BackendError, ModelNotFound

LISTED = 12  # models named in "it has" before "and N more"
VARIANT = "-builtin"  # i-lost.yaml -> i-lost-builtin.yaml: the same game on built-in models


@dataclass(slots=True)
class Need:
    """What one engine is asked for: each model, with the (scenario file, agent) using it."""

    backend: Backend
    choice: Choice
    models: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, model: str, source: str, agent: str) -> None:
        self.models.setdefault(model, []).append((source, agent))


def reason(exc: ModelNotFound, model: str) -> str:
    """Why ``model`` is missing, without repeating its name."""
    text = exc.message.removeprefix(f"model {model!r} not found").lstrip("; ") or "not found"
    return f"{text}; {exc.hint}" if exc.hint else text


async def explain(need: Need, missing: dict[str, ModelNotFound], pull: bool) -> list[str]:
    """The lines that tell a person about ``missing`` models on one engine."""
    backend = need.backend
    users = [use for model in missing for use in need.models[model]]
    sources = sorted({source for source, _ in users})
    lines = [f"{', '.join(sources)}: {engine_label(backend)} does not have {', '.join(missing)}"]
    reasons: dict[str, list[str]] = {}
    for model, exc in missing.items():
        reasons.setdefault(reason(exc, model), []).append(model)
    lines += [f"  {', '.join(models)}: {why}" for why, models in reasons.items()]
    lines.append(f"  engine: {need.choice.reason}")
    available = await _available(backend)
    said = " ".join(reasons)
    if available is not None and not (available and all(m in said for m in available)):
        shown = ", ".join(available[:LISTED]) or "no models"
        more = len(available) - LISTED
        lines.append(f"  it has: {shown}" + (f" and {more} more" if more > 0 else ""))
    todo = _to_do(need.choice, available or [], users, sources)
    if todo:
        lines.append("  to play anyway: " + "; or ".join(todo))
    if pull and not backend.can_pull:
        lines.append(f"  --pull: {await _refusal(backend, next(iter(missing)))}")
    return lines


async def _available(backend: Backend) -> list[str] | None:
    try:
        return [info.name for info in await backend.list_models()]
    except BackendError:
        return None


def _to_do(
    choice: Choice, available: list[str], users: list[tuple[str, str]], sources: list[str]
) -> list[str]:
    todo = []
    if available:
        model = f"--model {_quoted(available[0])} (every agent)"
        agents = list(dict.fromkeys(agent for _, agent in users))
        if len(available) > 1 and len(agents) > 1 and len(sources) == 1:
            pairs = zip(agents, available * len(agents), strict=False)
            model += ", or " + " ".join(f"--model {a}={_quoted(m)}" for a, m in pairs)
        todo.append(model)
    for source in sources:
        path = Path(source)
        variant = path.with_name(f"{path.stem}{VARIANT}{path.suffix}")
        if variant.is_file():
            todo.append(f"{variant} (the same scenario on the built-in models)")
    if choice.alternative:
        todo.append(choice.alternative)
    return todo


def _quoted(name: str) -> str:
    """A model name as it would be typed in a shell."""
    safe = all(ch.isalnum() or ch in "-_.:/=@+" for ch in name)
    return name if safe else "'" + name.replace("'", "'\\''") + "'"


async def _refusal(backend: Backend, model: str) -> str:
    """The backend's own words for why it cannot pull."""

    def ignore(status: str, completed: int | None, total: int | None) -> None:
        return None

    try:
        await backend.pull(model, ignore)
    except ModelNotFound as exc:
        return f"{exc.message}; {exc.hint}" if exc.hint else exc.message
    return f"{engine_label(backend)} cannot download models"
