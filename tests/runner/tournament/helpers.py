"""Small tournaments written to a temporary folder, for the tests."""

from __future__ import annotations

from pathlib import Path

SCENARIO = """\
name: duel
description: Two speakers argue; whoever says "I lost" loses.
agents:
  - name: opener
    model: placeholder
    persona: You open the argument.
    opening: "Let us argue about tea."
  - name: replier
    model: placeholder
    persona: You answer.
max_turns: {max_turns}
end:
  - name: concession
    phrase: "I lost"
    outcome: speaker_loses
    speakers: [opener, replier]
seed: 3
"""

TOURNAMENT = """\
name: cup
scenario: duel.yaml
entrants:
{entrants}
games: {games}
swap_seats: {swap}
seed: 5
{extra}"""


def write_tournament(
    folder: Path,
    entrants: list[str] | None = None,
    *,
    games: int = 1,
    swap: bool = True,
    max_turns: int = 8,
    extra: str = "",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "duel.yaml").write_text(SCENARIO.format(max_turns=max_turns), encoding="utf-8")
    names = entrants or ["m1", "m2", "m3"]
    listed = "\n".join(f"  - {name}" for name in names)
    path = folder / "cup.yaml"
    path.write_text(
        TOURNAMENT.format(entrants=listed, games=games, swap=str(swap).lower(), extra=extra),
        encoding="utf-8",
    )
    return path
