"""The command line starts light: a command loads what it drives when it runs, and the
report's stack (the report extra) only where ratings or a report are made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner.extras import REPORT
from tests.cli import I_LOST, LLAMA, QWEN, ROOT, env, no_traceback, on
from tests.fakes.ollama_server import FakeOllama

HEAVY = ("sklearn", "scipy", "pandas", "matplotlib", "lingua", "vaderSentiment")


def loaded_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running ``code``."""
    listing = "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    script = f"{code}\nimport json, sys\n{listing}"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_cli_and_building_its_parser_loads_no_numerical_stack() -> None:
    loaded = loaded_after("import runner.cli\nrunner.cli.build_parser()")
    assert "runner" in loaded  # the probe sees what the interpreter imported
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_validating_a_scenario_loads_neither_the_report_stack_nor_an_engine_client() -> None:
    code = (
        "import contextlib, io\nfrom runner.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['validate', 'scenarios/i-lost.yaml']) == 0"
    )
    loaded = loaded_after(code)
    assert "pydantic" in loaded  # the scenario was really validated
    assert not loaded & {*HEAVY, "httpx", "ollama", "llama_cpp"}


def without_report_extra(*argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI where the report extra's packages cannot be imported."""
    blocked = ", ".join(repr(name) for name in REPORT)
    script = (
        f"import sys\nfor name in ({blocked},):\n    sys.modules[name] = None\n"
        f"from runner.cli import main\nsys.exit(main({list(argv)!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (("report", "transcripts"), "sparring report"),
        (("leaderboard", "transcripts"), "sparring leaderboard"),
    ],
)
def test_without_the_report_extra_a_command_that_needs_it_says_what_to_install(
    argv: tuple[str, ...], what: str
) -> None:
    result = without_report_extra(*argv)
    assert result.returncode == 2
    no_traceback(result)
    assert result.stderr.splitlines() == [
        f"sparring: {what} needs the report extra ({', '.join(REPORT)} not installed): "
        "pip install 'sparring[report]'"
    ]


def test_without_the_report_extra_scenarios_still_validate() -> None:
    result = without_report_extra("validate", "scenarios/i-lost.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok  scenarios/i-lost.yaml" in result.stdout


def test_without_the_report_extra_a_scenario_runs(tmp_path: Path) -> None:
    with FakeOllama.in_thread(models=[QWEN, LLAMA]) as fake:
        result = without_report_extra(
            "run", str(I_LOST), "--out", str(tmp_path), *map(str, on(fake))
        )
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    assert len(list(tmp_path.glob("*.jsonl"))) == 1
