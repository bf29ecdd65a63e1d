"""``sparring show``: transcripts, printed readably."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from runner.cli.options import EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console

HELP = "print a transcript readably"
ENGINE = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "transcripts", nargs="+", metavar="TRANSCRIPT", help="JSONL files or folders of them"
    )


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from runner.console.transcript import show_transcript
    from runner.transcript import read_transcript, transcript_paths

    for i, path in enumerate(transcript_paths(args.transcripts)):
        if i and out.is_terminal:
            out.rule()
        elif i:  # a rule spans the console, which has no width on a pipe
            out.print("─" * 80)
        show_transcript(out, read_transcript(path))
    return EXIT_OK
