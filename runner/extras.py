"""Optional parts of sparring, and the one line a user without them is told.

The report's numerical and text stack (tables, statistics, ratings, text measures and
charts) is the ``report`` extra: a conversation needs none of it, and it is most of what
an install downloads.
"""

from __future__ import annotations

import importlib.util

from agents.errors import SparringError

# Import names of the report extra's packages, as pyproject.toml lists them.
REPORT = ("pandas", "numpy", "scipy", "krippendorff", "lingua", "vaderSentiment", "lexicalrichness",
          "matplotlib")  # fmt: skip
REPORT_INSTALL = "pip install 'sparring[report]'"


class ExtraMissing(SparringError):
    """A command needs packages of an extra that is not installed."""


def missing(names: tuple[str, ...] = REPORT) -> list[str]:
    """The packages of ``names`` that cannot be imported here."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def require_report(what: str) -> None:
    """Raise ExtraMissing naming what to install when the report extra is not complete."""
    absent = missing()
    if absent:
        raise ExtraMissing(
            f"{what} needs the report extra ({', '.join(absent)} not installed): {REPORT_INSTALL}"
        )
