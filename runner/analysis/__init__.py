"""Comparing models from transcripts: tables, metrics with intervals, the HTML report.

Layers, each reading only the ones above it: ``frames`` (transcripts as pandas tables,
through :mod:`runner.transcript` alone), ``features`` (per-turn text measures),
``intervals`` (seeded bootstrap), ``metrics`` (per-group results), ``charts`` and
``report`` (the HTML page), ``command`` (``sparring report``).

The names below load on first use, so ``import runner.analysis`` stays cheap::

    from runner.analysis import load_frames, analyse
    frames = load_frames(["transcripts/"])
    frames.turns            # one row per turn, conversation fields joined in
    analyse(frames, "model").groups
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Frames": "frames",
    "load_frames": "frames",
    "turns_frame": "frames",
    "conversations_frame": "frames",
    "text_features": "features",
    "Estimate": "intervals",
    "ratio_estimate": "intervals",
    "METRICS": "metrics",
    "Analysis": "metrics",
    "GroupResult": "metrics",
    "analyse": "metrics",
    "LeaderboardRow": "leaderboard",
    "tournament_leaderboard": "leaderboard",
    "Standings": "leaderboard",
    "tournament_standings": "leaderboard",
    "render_html": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'runner.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(f"runner.analysis.{_EXPORTS[name]}"), name)
