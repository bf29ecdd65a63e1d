"""``sparring run``: play scenarios, or with ``--dry-run`` / ``--show-prompts`` only plan them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from runner.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_limits,
    add_out,
    add_pull,
    count,
    run_settings,
    seed,
)
from runner.scenario.limits import MAX_REPEAT, MAX_TURNS

if TYPE_CHECKING:
    from rich.console import Console

    from runner.scenario.schema import ResolvedScenario

HELP = "run scenarios"
ENGINE = True  # takes --backend, --host, --api-key-env


def _var(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _model(text: str) -> tuple[str | None, str]:
    """``AGENT=MODEL`` for one agent, or ``MODEL`` for every agent."""
    agent, sep, model = text.partition("=")
    if not sep:
        return None, text.strip()
    if not agent.strip() or not model.strip():
        raise argparse.ArgumentTypeError(f"expected AGENT=MODEL or MODEL, got {text!r}")
    return agent.strip(), model.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files")
    _add_inputs(parser)
    add_limits(parser)
    parser.add_argument(
        "--max-conversations",
        type=count(MAX_REPEAT),
        metavar="N",
        help="conversations alive at once, each with an open transcript (default: enough to "
        "keep every server slot busy, within the open-file limit)",
    )
    add_out(parser)
    add_pull(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate, choose backends and check models; do not chat",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.add_argument(
        "--show-prompts",
        action="store_true",
        help="print each agent's first request as its engine would receive it "
        "(implies --dry-run: nothing is sent to a model)",
    )


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    """What to run: changes to the scenarios, all recorded as overrides."""
    parser.add_argument(
        "--repeat", type=count(MAX_REPEAT), metavar="N", help="run each scenario N times"
    )
    parser.add_argument(
        "--seed", metavar="N", type=seed, help="base seed (overrides the scenario's)"
    )
    parser.add_argument(
        "--var", type=_var, action="append", default=[], metavar="KEY=VALUE",
        help="set a scenario variable",
    )  # fmt: skip
    parser.add_argument(
        "--model", type=_model, action="append", default=[], metavar="[AGENT=]MODEL",
        help="use MODEL for AGENT, or for every agent (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--max-turns", metavar="N", type=count(MAX_TURNS), help="override the scenario's max_turns"
    )


def load_all(files: Sequence[str], **overrides: object) -> list[ResolvedScenario]:
    """Every scenario, or one ConfigError listing the problems of all of them."""
    from agents.errors import ConfigError
    from runner.scenario.schema import load_scenario

    scenarios, problems = [], []
    for file in files:
        try:
            scenarios.append(load_scenario(file, **overrides))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return scenarios


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from runner.run.batch import run_batch
    from runner.run.preview import preview

    scenarios = load_all(
        args.files,
        vars=dict(args.var),
        models=dict(args.model),
        seed=args.seed,
        repeat=args.repeat,
        max_turns=args.max_turns,
    )
    settings = run_settings(args, max_conversations=args.max_conversations)
    if args.show_prompts:
        await preview(scenarios, settings, out)
        return EXIT_OK
    failed = await run_batch(
        scenarios, settings, out=out, err=err, quiet=args.quiet, dry_run=args.dry_run
    )
    return EXIT_FAILED if failed else EXIT_OK
