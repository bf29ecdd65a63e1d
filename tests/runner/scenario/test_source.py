"""YAML read safely, every value's position kept, and validation errors as located lines.

The module is generic (scenarios and tournaments both use it), so these tests give it a
small model of their own rather than a scenario.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from agents.errors import ConfigError
from runner.scenario.source import (
    MAX_BYTES,
    MAX_PROBLEMS,
    PositionMap,
    Schema,
    format_loc,
    read_yaml,
    validate,
)


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    size: int = Field(1, ge=1)


class Box(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    label: str
    parts: list[Part] = Field(min_length=1)


SCHEMA = Schema(root=Box, nested={"parts": Part}, too_short={("parts",): "a box holds a part"})


def written(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "box.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    data, positions = read_yaml(written(tmp_path, text), "a box")
    with pytest.raises(ConfigError) as info:
        validate(data, positions, SCHEMA)
    return info.value.problems


def test_positions_name_the_line_and_column_of_keys_and_values(tmp_path: Path) -> None:
    data, positions = read_yaml(
        written(tmp_path, "label: b\nparts:\n  - name: p\n    size: 2\n"), "a box"
    )
    assert data == {"label": "b", "parts": [{"name": "p", "size": 2}]}
    assert positions.position(("parts", 0, "size")) == (4, 11)
    assert positions.position(("parts", 0, "size"), key=True) == (4, 5)
    assert positions.describe(("label",), "wrong") == f"{tmp_path / 'box.yaml'}:1:8: label: wrong"
    assert format_loc(("parts", 0, "size")) == "parts[0].size"


def test_a_valid_file_gives_the_model(tmp_path: Path) -> None:
    data, positions = read_yaml(written(tmp_path, "label: b\nparts: [{name: p}]\n"), "a box")
    box = validate(data, positions, SCHEMA)
    assert isinstance(box, Box) and box.parts[0].size == 1


def test_every_problem_is_one_located_line_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "box.yaml"
    lines = problems(tmp_path, "parts:\n  - name: p\n    size: 0\n  - nmae: q\nlabel: 3\n")
    assert lines == [
        f"{path}:3:11: parts[0].size: Input should be greater than or equal to 1",
        f"{path}:4:5: parts[1].name: required field is missing",
        f"{path}:4:5: parts[1].nmae: unknown key 'nmae' (did you mean 'name'?)",
        f"{path}:5:8: label: Input should be a valid string; got 3",
    ]


def test_a_too_short_list_says_what_it_needs(tmp_path: Path) -> None:
    [line] = problems(tmp_path, "label: b\nparts: []\n")
    assert line == f"{tmp_path / 'box.yaml'}:2:8: parts: a box holds a part; got 0"


def test_duplicate_keys_are_problems_though_yaml_would_keep_the_last(tmp_path: Path) -> None:
    [line] = problems(tmp_path, "label: a\nlabel: b\nparts: [{name: p}]\n")
    assert ":2:1: " in line and "duplicate key 'label'" in line


def test_problems_beyond_a_screenful_are_counted_not_listed(tmp_path: Path) -> None:
    parts = "".join("  - name: p\n    size: 0\n" for _ in range(MAX_PROBLEMS + 5))
    lines = problems(tmp_path, f"label: b\nparts:\n{parts}")
    assert len(lines) == MAX_PROBLEMS + 1
    assert lines[-1].endswith("5 more problems not shown")


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "the file is empty; expected a box"),
        (b"- a\n- b\n", "expected a mapping: a box; got a list"),
        (b"label: [unclosed\n", "not valid YAML"),
        (b"label: \xff\n", "not UTF-8 text (byte 7)"),
        (b"a: &x [1]\nb: !!python/object:os.system x\n", "not valid YAML"),
        (b"x" * (MAX_BYTES + 1), "larger than"),
    ],
)
def test_a_file_that_is_no_mapping_of_yaml_is_one_line(
    tmp_path: Path, content: bytes, said: str
) -> None:
    with pytest.raises(ConfigError) as info:
        read_yaml(written(tmp_path, content), "a box")
    [line] = info.value.problems
    assert line.startswith(str(tmp_path / "box.yaml")) and said in line


def test_aliases_that_expand_beyond_reason_are_refused(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    with pytest.raises(ConfigError, match="expands to more than"):
        read_yaml(written(tmp_path, "\n".join(levels) + "\n"), "a box")


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_yaml(tmp_path / "nowhere.yaml", "a box")
    assert info.value.problems == [f"{tmp_path / 'nowhere.yaml'}: no such file"]


def test_a_position_map_without_a_document_describes_the_file_alone() -> None:
    positions = PositionMap("<data>")
    assert positions.position(("label",)) is None
    assert positions.describe(("label",), "wrong") == "<data>: label: wrong"
