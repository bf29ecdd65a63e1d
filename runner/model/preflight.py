"""The preflight: every engine has every model it will be asked for, before the first chat.

It asks each engine once per model (``find_model``), pulls what is missing where asked to
and the engine can, and records what the engine said on each model's handle (its digest
goes into transcripts). Models still missing raise one ConfigError whose lines a caller's
``explain`` words (a run's: :func:`runner.model.missing.explain`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import structlog

from agents.errors import ConfigError, ModelNotFound
from runner.model.handle import Model
from runner.model.missing import Need, explain

log = structlog.get_logger("sparring.preflight")

PullProgress = Callable[[str, str, int | None, int | None], None]
"""``progress(model, status, completed, total)`` while pulling."""
Explain = Callable[[Need, dict[str, ModelNotFound], bool], Awaitable[list[str]]]
Use = tuple[Model, str, str]  # a model, the file that asks for it, and who in it asks


async def preflight(
    uses: Iterable[Use],
    *,
    pull: bool = False,
    progress: PullProgress | None = None,
    explain: Explain = explain,
) -> None:
    """Check (or with ``pull``, fetch) every model of ``uses``; set each handle's info."""
    needs: list[tuple[Need, dict[str, list[Model]]]] = []  # per engine, in order of first use
    for model, source, agent in uses:
        found = next((n for n in needs if n[0].backend is model.backend), None)
        if found is None:
            found = (Need(model.backend, model.choice), {})
            needs.append(found)
        need, handles = found
        need.add(model.name, source, agent)
        handles.setdefault(model.name, []).append(model)
    problems: list[str] = []
    for need, handles in needs:
        backend = need.backend
        missing: dict[str, ModelNotFound] = {}
        for name in sorted(need.models):
            try:
                info = await backend.find_model(name)
            except ModelNotFound as exc:
                if not (pull and backend.can_pull):
                    missing[name] = exc
                    continue
                log.info("pulling", model=name, host=backend.host)
                await backend.pull(name, _progress_for(name, progress))
                info = await backend.find_model(name)
            for handle in handles[name]:
                handle.info = info
        if missing:
            problems.extend(await explain(need, missing, pull))
    if problems:
        raise ConfigError(problems)


def _progress_for(
    model: str, progress: PullProgress | None
) -> Callable[[str, int | None, int | None], None]:
    def report(status: str, completed: int | None, total: int | None) -> None:
        if progress is not None:
            progress(model, status, completed, total)

    return report
