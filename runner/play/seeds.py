"""Seeds derived from seeds: every conversation, agent and turn gets its own, and each
depends only on the run's base seed and where it is used, so any run can be replayed."""

from __future__ import annotations

import hashlib


def derive_seed(base: int, *parts: object) -> int:
    """A seed for a sub-run that depends only on the base seed and the parts."""
    text = ":".join(str(p) for p in (base, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
