"""Results played elsewhere, read as a table of pair counts for :func:`fit.rate`.

CSV (with a header line) or JSON lines (one object a line), in either of two shapes:

    a, b, outcome               one game a line: ``a`` sat first; outcome ``a``, ``b`` or ``draw``
    a, b, wins, draws, losses   games counted per pair, from ``a``'s side (``draws`` optional)

Lines are counted as they are read (``collections.Counter`` over the raw lines), so a
million games of a hundred entrants take the memory of their few thousand distinct lines;
only distinct lines are parsed and checked. A bad line is found again by reading the file
a second time, so that the error names the first bad line, its column and the file.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from agents.errors import ConfigError
from runner.tournament.fit import PairCounts

GAME_COLUMNS = ("a", "b", "outcome")
COUNT_COLUMNS = ("a", "b", "wins", "draws", "losses")
OPTIONAL = {"draws"}
OUTCOMES = {"a": 0, "draw": 1, "b": 2}  # the column of a's wins, draws, losses it adds to
EXPECTED = (
    "expected a, b and outcome (one game a line) or a, b, wins, draws and losses (games "
    "counted per pair)"
)
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}

Tallies = dict[tuple[str, str], list[int]]


class _Bad(Exception):
    """A line's problem: the column it is in (None: the whole line) and what is wrong."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column, self.message = column, message


def read_table(path: Path) -> PairCounts:
    """The games of a CSV or JSON-lines table, counted per ordered pair; ConfigError (one
    line naming file, line and column) for anything that is not such a table."""
    source = str(path)
    try:
        with path.open("rb") as f:
            start = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file or folder") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if not start:
        raise ConfigError(f"{source}:1: no games: the file is empty")
    as_json = path.suffix.lower() in JSON_SUFFIXES or (
        path.suffix.lower() != ".csv" and start.startswith(b"{")
    )
    try:
        tallies = _json_lines(path, source) if as_json else _csv(path, source)
    except UnicodeDecodeError:
        raise ConfigError(_undecodable(path, source)) from None
    return PairCounts.from_tallies(tallies)


# -- one line's values -------------------------------------------------------------------


def _name(value: Any, column: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(column, f"expected an entrant's name, got {json.dumps(value)}")
    return value.strip()


def _count(value: Any, column: str) -> int:
    if isinstance(value, str):
        text = value.strip()
        digits = text.removeprefix("-")
        number = int(text) if digits.isascii() and digits.isdigit() else None
    else:
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None:
        raise _Bad(column, f"expected a whole number of games, got {json.dumps(value)}")
    if number < 0:
        raise _Bad(column, f"a count cannot be negative, got {number}")
    return number


def _add(tallies: Tallies, record: dict[str, Any], times: int) -> None:
    """Count one line (seen ``times`` times) into ``tallies``."""
    a, b = _name(record["a"], "a"), _name(record["b"], "b")
    if a == b:
        raise _Bad("b", f"{json.dumps(a)} plays itself")
    if "outcome" in record:
        outcome = record["outcome"]
        text = outcome.strip() if isinstance(outcome, str) else outcome
        if text not in OUTCOMES:
            raise _Bad("outcome", f"expected a, b or draw, got {json.dumps(outcome)}")
        counts = [0, 0, 0]
        counts[OUTCOMES[text]] = 1
    else:
        counts = [_count(record.get(c, 0), c) for c in ("wins", "draws", "losses")]
    row = tallies.setdefault((a, b), [0, 0, 0])
    for i, n in enumerate(counts):
        row[i] += n * times


def _shape(columns: Iterable[str]) -> tuple[str, ...] | None:
    """The shape (GAME_COLUMNS or COUNT_COLUMNS) these columns make, if any."""
    given = set(columns)
    if given == set(GAME_COLUMNS):
        return GAME_COLUMNS
    if set(COUNT_COLUMNS) - OPTIONAL <= given <= set(COUNT_COLUMNS):
        return COUNT_COLUMNS
    return None


def _check_columns(columns: list[str], where: str) -> None:
    known = set(GAME_COLUMNS) | set(COUNT_COLUMNS)
    for position, name in enumerate(columns, start=1):
        if name not in known:
            raise ConfigError(
                f"{where}: column {position} {json.dumps(name)}: unknown column; {EXPECTED}"
            )
        if columns.index(name) != position - 1:
            raise ConfigError(f"{where}: column {position} {json.dumps(name)}: given twice")
    if _shape(columns) is None:
        has = set(columns)
        shape = GAME_COLUMNS if "outcome" in has else COUNT_COLUMNS
        missing = [c for c in shape if c not in has and c not in OPTIONAL]
        extra = [c for c in columns if c not in shape]
        what = (
            f"no column {json.dumps(missing[0])}"
            if missing
            else f"column {json.dumps(extra[0])} does not go with outcome"
        )
        raise ConfigError(f"{where}: {what}; {EXPECTED}")


def _no_games(source: str, line: int, tallies: Tallies) -> Tallies:
    if not any(sum(wdl) for wdl in tallies.values()):
        what = "every count is 0" if tallies else "no rows after the header"
        raise ConfigError(f"{source}:{line}: no games: {what}")
    return tallies


# -- CSV ---------------------------------------------------------------------------------


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, strict=True)
        for row in reader:
            yield reader.line_num, row


def _distinct_rows(raw: Counter[str]) -> Counter[tuple[str, ...]] | None:
    """The rows of distinct raw lines, counted; None when a line is not a row by itself
    (a quoted value spanning lines, or a quoting error: the csv module reads those)."""
    rows: Counter[tuple[str, ...]] = Counter()
    for line, times in raw.items():
        if line.count('"') % 2:
            return None
        try:
            rows[tuple(next(csv.reader([line], strict=True), []))] += times
        except csv.Error:
            return None
    return rows


def _csv(path: Path, source: str) -> Tallies:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = next((row for row in reader if row), [])
            header_line = reader.line_num
            columns = [c.strip() for c in header]
            _check_columns(columns, f"{source}:{header_line}")
            # The lines after the header, counted as read (in C): memory for the distinct
            # lines only, and only those are parsed.
            raw = Counter(f)
            last = header_line + sum(raw.values())
            found_rows = _distinct_rows(raw)
            if found_rows is None:
                f.seek(0)
                reader = csv.reader(f, strict=True)
                while reader.line_num < header_line:
                    next(reader)
                found_rows = Counter(map(tuple, reader))
            lines = found_rows
        except csv.Error as exc:
            raise ConfigError(f"{source}:{reader.line_num}: not CSV: {exc}") from None
    tallies: Tallies = {}
    bad: dict[tuple[str, ...], _Bad] = {}
    for row, times in lines.items():
        if not row:
            continue  # a blank line
        try:
            if len(row) != len(columns):
                raise _Bad(None, f"{len(row)} values where the header has {len(columns)} columns")
            _add(tallies, dict(zip(columns, row, strict=True)), times)
        except _Bad as exc:
            bad[row] = exc
    if bad:
        line, first = next(
            (n, tuple(r)) for n, r in _csv_rows(path) if tuple(r) in bad and n > header_line
        )
        found = bad[first]
        where = (
            f"column {columns.index(found.column) + 1} {json.dumps(found.column)}: "
            if found.column in columns
            else ""
        )
        raise ConfigError(f"{source}:{line}: {where}{found.message}")
    return _no_games(source, max(last, header_line + 1), tallies)


# -- JSON lines --------------------------------------------------------------------------


def _record(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.removeprefix(b"\xef\xbb\xbf"))
    except json.JSONDecodeError as exc:
        raise _Bad(f"@{exc.colno}", f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise _Bad(None, f"expected an object; {EXPECTED}")
    known = set(GAME_COLUMNS) | set(COUNT_COLUMNS)
    for key in data:
        if key not in known:
            raise _Bad(key, f"unknown column; {EXPECTED}")
    if _shape(data) is None:
        shape = GAME_COLUMNS if "outcome" in data else COUNT_COLUMNS
        missing = [c for c in shape if c not in data and c not in OPTIONAL]
        if missing:
            raise _Bad(None, f"no column {json.dumps(missing[0])}; {EXPECTED}")
        extra = next(c for c in data if c not in shape)
        raise _Bad(extra, f"does not go with outcome; {EXPECTED}")
    return data


def _json_lines(path: Path, source: str) -> Tallies:
    with path.open("rb") as f:
        lines = Counter(map(bytes.strip, f))  # counted as read: distinct lines only
    tallies: Tallies = {}
    bad: dict[bytes, _Bad] = {}
    for raw, times in lines.items():
        if not raw:
            continue
        try:
            _add(tallies, _record(raw), times)
        except _Bad as exc:
            bad[raw] = exc
    if bad:
        with path.open("rb") as f:
            line, first = next((n, r.strip()) for n, r in enumerate(f, 1) if r.strip() in bad)
        found = bad[first]
        if found.column is None:
            where = f"{source}:{line}"
        elif found.column.startswith("@"):  # a JSON syntax error: its character column
            where = f"{source}:{line}:{found.column[1:]}"
        else:
            where = f"{source}:{line}: column {json.dumps(found.column)}"
        raise ConfigError(f"{where}: {found.message}")
    return _no_games(source, sum(lines.values()), tallies)


def _undecodable(path: Path, source: str) -> str:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"{source}:{number}:{exc.start + 1}: not UTF-8 text"
    return f"{source}: not UTF-8 text"
