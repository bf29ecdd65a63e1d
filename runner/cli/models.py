"""``sparring models``: what the chosen engine can serve."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from runner.cli.options import EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console

HELP = "list the backend's models"
ENGINE = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Only the engine options (``--backend``, ``--host``, ``--api-key-env``)."""


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from agents.backends import choose_backend, create_backend
    from agents.backends.base import BackendSettings
    from runner.console.models import models_table

    settings = BackendSettings(hosts=tuple(args.host), api_key_env=args.api_key_env)
    choice = await choose_backend(args.backend or "auto", settings)
    backend = create_backend(choice.name, settings)
    try:
        models = await backend.list_models()
    finally:
        await backend.aclose()
    models_table(out, choice.name, backend.host, models)
    return EXIT_OK
