"""The README and the reference pages under docs/: checked against the models they describe,
and against each other (every page linked, every link and anchor found)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from agents.backends.config import GenerateConfig
from runner.scenario.debate import JurorSpec, JurySpec, ModeratorSpec, MotionsFile, Sides
from runner.scenario.phases import Budget, Phase
from runner.scenario.schema import AgentSpec, Defaults, EndRule, Scenario, load_scenario
from runner.tournament.spec import EntrantSpec, JudgeSpec, TournamentSpec
from runner.transcript import (
    AgentInfo,
    EndRecord,
    ErrorInfo,
    Outcome,
    PhaseRecord,
    RunRecord,
    TimeoutsInfo,
    Totals,
    TurnRecord,
    VoteRecord,
)

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = sorted((ROOT / "docs").glob("*.md"))


def page(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # "# comments" in code blocks
    return {anchor(h) for h in re.findall(r"^#+ (.+)$", prose, re.M)}


def links(text: str) -> list[str]:
    """Relative links (``[text](path#anchor)``), outside code blocks."""
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", prose) if "://" not in t]


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
        ("phase", PhaseRecord, {}),
        ("vote", VoteRecord, {}),
        ("end", EndRecord, {"outcome": Outcome, "totals": Totals, "error": ErrorInfo}),
    ],
)
def test_transcript_reference_names_every_field(
    record: str, model: type[BaseModel], nested: dict[str, type[BaseModel]]
) -> None:
    documented = table(section(page("transcripts.md"), "Transcript reference"), record)
    assert set(documented) == set(model.model_fields)
    for field, inner in nested.items():
        named = set(re.findall(r"`([a-z_]+)`", documented[field]))
        assert set(inner.model_fields) <= named, f"{record}.{field}"


@pytest.mark.parametrize(
    "model",
    [
        *(Scenario, AgentSpec, Defaults, EndRule, GenerateConfig),
        *(Phase, Budget, ModeratorSpec, MotionsFile, Sides, JurySpec, JurorSpec),
    ],
)
def test_scenario_reference_names_every_field(model: type[BaseModel]) -> None:
    text = section(page("scenarios.md"), "Scenario reference")
    yaml_keys = set(re.findall(r"^\s*-?\s*([a-z_]+):", text, re.M))
    backticked = set(re.findall(r"`([a-z_]+)`", text))
    missing = set(model.model_fields) - yaml_keys - backticked
    assert not missing, f"{model.__name__}: {sorted(missing)}"


@pytest.mark.parametrize("model", [TournamentSpec, EntrantSpec, JudgeSpec])
def test_tournament_reference_names_every_field(model: type[BaseModel]) -> None:
    text = section(page("tournaments.md"), "Tournaments: `sparring tournament run`")
    yaml_keys = set(re.findall(r"^\s*-?\s*([a-z_]+):", text, re.M))
    mentioned = set(re.findall(r"\b([a-z_]+):", text)) | set(re.findall(r"`([a-z_]+)`", text))
    missing = set(model.model_fields) - yaml_keys - mentioned
    assert not missing, f"{model.__name__}: {sorted(missing)}"


def test_results_lines_are_described_field_by_field() -> None:
    from runner.tournament.ledger import ResultRecord

    text = section(page("tournaments.md"), "Tournaments: `sparring tournament run`")
    described = text[text.index("**Results lines**") :].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", described))
    assert set(ResultRecord.model_fields) - {"type"} <= named


def test_the_readme_gives_the_two_commands_on_its_first_screen() -> None:
    first_screen = "\n".join(README.splitlines()[:40])
    assert "scripts/quickstart.sh" in first_screen and "scripts/test.sh" in first_screen


def test_the_readme_links_every_reference_page() -> None:
    linked = {target.split("#")[0] for target in links(README)}
    assert PAGES and {f"docs/{p.name}" for p in PAGES} <= linked


@pytest.mark.parametrize("path", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_every_link_finds_its_file_and_heading(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for target in links(text):
        file, _, heading = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name}: {target}"
        if heading:
            assert heading in anchors(linked.read_text(encoding="utf-8")), f"{path.name}: {target}"


def test_the_readme_says_why_each_dependency_is_there() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["report"]]
    table = section(README, "Dependencies, and why")
    for requirement in wanted:
        name = re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0]
        assert f"`{name}`" in table, name


def test_leaderboard_reference_names_every_csv_column() -> None:
    from runner.tournament.ratings import ENTRANT_FIELDS

    text = section(page("tournaments.md"), "Tournaments: `sparring tournament run`")
    [documented] = re.findall(r"`--format csv` columns: `([a-z_,]+)`", text)
    assert documented.split(",") == list(ENTRANT_FIELDS)


def test_the_debate_formats_example_is_a_complete_valid_debate(tmp_path: Path) -> None:
    text = section(page("scenarios.md"), "Debate formats")
    start = text.index("```yaml\n") + len("```yaml\n")
    example = text[start : text.index("```", start)]
    path = tmp_path / "my-oxford.yaml"
    path.write_text(example, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.phases and scenario.moderator and scenario.motions and scenario.sides
    assert scenario.jury is not None and scenario.jury.stages == ("before", "after")
    assert len(scenario.jury.jurors) == 3
