"""``sparring report``: its options, and the run from transcript paths to a file or stdout.

Importing this module is cheap (the CLI imports it for every command); pandas, scipy and
the text libraries load only when a report is made.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agents.errors import SparringError
from runner import files

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from runner.analysis.frames import Frames
    from runner.analysis.metrics import Analysis

FORMATS = ("html", "json", "csv")
BY = ("model", "agent", "persona", "side", "phase")
DEFAULT_HTML = Path("report.html")


class ReportError(SparringError):
    """Nothing to report on, or the report cannot be written."""


def _whole(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="transcript files, folders of them, or a tournament folder",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="where to write (default: report.html for html, stdout for json and csv)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="html", help="output format (default html)"
    )
    parser.add_argument(
        "--by",
        choices=BY,
        default="model",
        help="group by model (default), agent, persona, a debate's side, or its phase",
    )
    parser.add_argument(
        "--max-sentences",
        type=_whole,
        metavar="N",
        help="count turns over N sentences as over length (default: 1 where the scenario "
        "asks for one sentence per turn)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="bootstrap seed (default 0)"
    )
    parser.add_argument(
        "--resamples",
        type=_whole,
        default=2000,
        metavar="N",
        help="bootstrap resamples per interval (default 2000)",
    )


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress:
        yield progress


def _load(paths: Sequence[str], progress: Progress) -> Frames:
    from runner.analysis.frames import load_frames, report_paths

    for path in paths:
        if not Path(path).exists():
            raise ReportError(f"{path}: no such file or folder")
    files = report_paths(paths)
    if not files:
        raise ReportError(f"no transcripts (*.jsonl) under {', '.join(paths)}")
    task = progress.add_task("reading transcripts", total=len(files))
    frames = load_frames(files, lambda done, total: progress.update(task, completed=done))
    if frames.conversations.empty:
        first = frames.skipped[0][1] if frames.skipped else "no conversation"
        raise ReportError(f"no readable transcript among {len(files)} file(s); first: {first}")
    return frames


def _analyse(frames: Frames, args: argparse.Namespace, progress: Progress) -> Analysis:
    from runner.analysis.metrics import analyse

    tasks: dict[str, Any] = {}

    def step(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(name, total=total)
        progress.update(tasks[name], completed=done, total=total)

    return analyse(
        frames,
        args.by,
        max_sentences=args.max_sentences,
        seed=args.seed,
        resamples=args.resamples,
        progress=step,
    )


def metrics_json(analysis: Analysis, frames: Frames) -> dict[str, Any]:
    """The machine-readable result: ``groups`` with every metric's value and interval."""
    return {
        "by": analysis.by,
        "settings": analysis.settings,
        "conversations": len(frames.conversations),
        "skipped": len(frames.skipped),
        "groups": [g.to_dict() for g in analysis.groups],
        "scenarios": [
            {"scenario": name, "groups": [g.to_dict() for g in groups]}
            for name, groups in analysis.scenarios.items()
        ],
    }


CSV_COLUMNS = ("group", "metric", "value", "ci_low", "ci_high", "n", "conversations", "turns")


def metrics_csv(analysis: Analysis) -> str:
    """One row per group and metric."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for g in analysis.groups:
        for name, estimate in g.metrics.items():
            e = estimate.to_dict()
            row = (e["value"], e["ci_low"], e["ci_high"], e["n"], g.conversations, g.turns)
            writer.writerow((g.group, name, *row))
    return buffer.getvalue()


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (an older report stays intact)."""
    try:
        files.write_whole(path, text)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from None


def run(args: argparse.Namespace, err: Console, out: TextIO) -> int:
    """Make the report the arguments ask for; returns the exit status."""
    from runner.analysis.leaderboard import find_standings

    output: Path | None = args.output
    if args.format == "html" and output is None:
        output = DEFAULT_HTML
    if output is not None and output.is_dir():
        raise ReportError(f"{output}: is a folder; give a file name with -o")
    with _progress(err) as progress:
        frames = _load(args.paths, progress)
        analysis = _analyse(frames, args, progress)
        if args.format == "json":
            data = metrics_json(analysis, frames)
            standings = find_standings(args.paths)
            data["leaderboard"] = (
                [row.model_dump() for row in standings.rows] if standings else None
            )
            data["judges"] = standings.judges if standings else None
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        elif args.format == "csv":
            text = metrics_csv(analysis)
        else:
            from runner.analysis.report import render_html

            standings = find_standings(args.paths)
            text = render_html(frames, analysis, standings, sources=args.paths)
    if frames.skipped:
        err.print(
            f"skipped {len(frames.skipped)} unreadable file(s); first: {frames.skipped[0][1]}",
            markup=False,
            highlight=False,
        )
    if output is None:
        out.write(text)
        return 0
    write_atomically(output, text)
    err.print(
        f"report: {output} ({len(frames.conversations)} conversations, "
        f"{len(analysis.groups)} groups by {analysis.by})",
        markup=False,
        highlight=False,
    )
    return 0
