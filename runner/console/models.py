"""What an engine can serve, as ``sparring models`` prints it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from agents.backends.base import ModelInfo
from runner.console import safe
from runner.terminal import printable


def models_table(out: Console, backend: str, host: str | None, models: Sequence[ModelInfo]) -> None:
    """A table on a terminal; tab-separated lines, ids never cut, when piped."""
    rows = [
        (
            m.name,
            f"{m.size / 1e9:.2f} GB" if m.size else "",
            m.family or "",
            m.parameter_size or "",
            m.quantization or "",
        )
        for m in sorted(models, key=lambda m: m.name)
    ]
    if not out.is_terminal:
        # Written as they are: rich would expand the tabs and pad or wrap at its width.
        lines = [f"# {backend} at {host}", *("\t".join(row) for row in rows)]
        out.file.write("".join(printable(line) + "\n" for line in lines))
        out.file.flush()
        return
    table = Table(title=printable(f"{backend} at {host}"), title_justify="left", show_edge=False)
    for column in ("model", "size", "family", "parameters", "quantization"):
        table.add_column(column, justify="right" if column == "size" else "left", overflow="fold")
    for row in rows:
        table.add_row(*(safe(cell) for cell in row))
    out.print(table)
    if not models:
        out.print("no models")
