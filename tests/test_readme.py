"""The README's references are checked against the models they describe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from agents.backends.config import GenerateConfig
from runner.scenario.schema import AgentSpec, Defaults, EndRule, Scenario
from runner.tournament.spec import EntrantSpec, JudgeSpec, TournamentSpec
from runner.transcript import (
    AgentInfo,
    EndRecord,
    ErrorInfo,
    Outcome,
    RunRecord,
    TimeoutsInfo,
    Totals,
    TurnRecord,
)

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def table(text: str, record: str) -> dict[str, str]:
    """``field -> row`` of the table under **`record`**."""
    block = text[text.index(f"**`{record}`**") :]
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", block.split("\n\n", 2)[1], re.M)
    fields: dict[str, str] = {}
    for names, meaning in rows:
        for name in re.findall(r"`([a-z_]+)`", names):
            fields[name] = meaning
    return fields


@pytest.mark.parametrize(
    ("record", "model", "nested"),
    [
        ("run", RunRecord, {"agents": AgentInfo, "timeouts": TimeoutsInfo}),
        ("turn", TurnRecord, {}),
        ("end", EndRecord, {"outcome": Outcome, "totals": Totals, "error": ErrorInfo}),
    ],
)
def test_transcript_reference_names_every_field(
    record: str, model: type[BaseModel], nested: dict[str, type[BaseModel]]
) -> None:
    documented = table(section("Transcript reference"), record)
    assert set(documented) == set(model.model_fields)
    for field, inner in nested.items():
        named = set(re.findall(r"`([a-z_]+)`", documented[field]))
        assert set(inner.model_fields) <= named, f"{record}.{field}"


@pytest.mark.parametrize("model", [Scenario, AgentSpec, Defaults, EndRule, GenerateConfig])
def test_scenario_reference_names_every_field(model: type[BaseModel]) -> None:
    text = section("Scenario reference")
    yaml_keys = set(re.findall(r"^\s*-?\s*([a-z_]+):", text, re.M))
    backticked = set(re.findall(r"`([a-z_]+)`", text))
    missing = set(model.model_fields) - yaml_keys - backticked
    assert not missing, f"{model.__name__}: {sorted(missing)}"


@pytest.mark.parametrize("model", [TournamentSpec, EntrantSpec, JudgeSpec])
def test_tournament_reference_names_every_field(model: type[BaseModel]) -> None:
    text = section("Tournaments: `sparring tournament run`")
    yaml_keys = set(re.findall(r"^\s*-?\s*([a-z_]+):", text, re.M))
    mentioned = set(re.findall(r"\b([a-z_]+):", text)) | set(re.findall(r"`([a-z_]+)`", text))
    missing = set(model.model_fields) - yaml_keys - mentioned
    assert not missing, f"{model.__name__}: {sorted(missing)}"


def test_results_lines_are_described_field_by_field() -> None:
    from runner.tournament.ledger import ResultRecord

    text = section("Tournaments: `sparring tournament run`")
    described = text[text.index("**Results lines**") :].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", described))
    assert set(ResultRecord.model_fields) - {"type"} <= named
