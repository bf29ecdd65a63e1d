"""YAML files read safely, with every value's position, for one-line errors.

Reading is ``yaml.safe_load`` plus limits that keep a hostile or broken file from costing
more than a moment: a size limit, a nesting limit (checked on the event stream, which
needs no recursion) and a limit on the values the document expands to once its aliases
are followed (counted on the node graph, each shared node once), so an alias bomb is
refused before anything walks it.
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agents.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

Loc = tuple[str | int, ...]

MAX_BYTES = 1_048_576  # 1 MiB: a scenario with long personas is a few kilobytes
MAX_DEPTH = 64  # nested mappings and lists
MAX_VALUES = 100_000  # values in the document with every alias expanded

# libyaml's parser when PyYAML has it (it does in the PyPI wheels): faster, same results.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PositionMap:
    """Field path -> (line, column), 1-based, from the composed YAML node tree."""

    def __init__(self, source: str, root: yaml.Node | None = None) -> None:
        self.source = source
        self.values: dict[Loc, tuple[int, int]] = {}
        self.keys: dict[Loc, tuple[int, int]] = {}
        self.duplicates: list[tuple[Loc, tuple[int, int]]] = []
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        self.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = (*loc, key)
                pos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in seen:
                    self.duplicates.append((child, pos))
                seen.add(key)
                self.keys[child] = pos
                self._walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*loc, i))

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int] | None:
        # The deepest known ancestor: a missing field is reported where its parent is.
        for depth in range(len(loc), -1, -1):
            prefix = loc[:depth]
            table = self.keys if key and depth == len(loc) else self.values
            if prefix in table:
                return table[prefix]
            if prefix in self.keys:
                return self.keys[prefix]
        return None

    def describe(self, loc: Loc, message: str, *, key: bool = False) -> str:
        pos = self.position(loc, key=key)
        where = f"{self.source}:{pos[0]}:{pos[1]}" if pos else self.source
        return f"{where}: {format_loc(loc) or '(top level)'}: {message}"


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _where(source: str, mark: Any) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source


def _check_depth(source: str, text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(
                    f"{_where(source, event.start_mark)}: nested more than {MAX_DEPTH} levels "
                    "deep; a scenario never needs that"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _expanded_size(root: yaml.Node) -> int:
    """How many values the document holds once aliases are followed (capped)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if children_done:
            total = 1 + sum(sizes.get(id(c), 0) for c in children)
            sizes[id(node)] = min(total, MAX_VALUES + 1)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


class Unreadable(ValueError):
    """Why a file sparring reads as text cannot be read (the message leaves out the path)."""

    def __init__(self, reason: str, *, oversized: bool = False) -> None:
        super().__init__(reason)
        self.oversized = oversized


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``, reading no more than ``MAX_BYTES`` of it; raises
    Unreadable: no such file, cannot read, too large, or not UTF-8."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except OSError as exc:
        raise Unreadable(f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise Unreadable(f"larger than {MAX_BYTES // 1024} KiB", oversized=True)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8 text (byte {exc.start})") from None


def read_yaml(path: str | Path, expected: str) -> tuple[dict[str, Any], PositionMap]:
    """The mapping in a YAML file and the position of each of its values.

    Raises ConfigError (one line naming the file, and the line and column where there is
    one) for a missing, unreadable, oversized, malformed or non-mapping file.
    """
    path = Path(path)
    source = str(path)
    try:
        text = read_text(path)
    except Unreadable as exc:
        also = "; not a scenario file" if exc.oversized else ""
        raise ConfigError(f"{source}: {exc}{also}") from None
    try:
        _check_depth(source, text)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is not None and _expanded_size(root) > MAX_VALUES:
                raise ConfigError(
                    f"{source}: expands to more than {MAX_VALUES} values (aliases referring "
                    "to aliases?); refusing to read it"
                )
            # The data built from the same nodes, exactly as yaml.safe_load builds it.
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except (yaml.YAMLError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "maximum nesting depth" in problem:  # PyYAML >= 6.0.4 has a limit of its own
            problem = f"nested more than {MAX_DEPTH} levels deep; a scenario never needs that"
            raise ConfigError(f"{_where(source, mark)}: {problem}") from None
        raise ConfigError(f"{_where(source, mark)}: not valid YAML: {problem}") from None
    if root is None or data is None:
        raise ConfigError(f"{source}: the file is empty; expected {expected}")
    positions = PositionMap(source, root)
    if not isinstance(data, dict):
        raise ConfigError(
            positions.describe((), f"expected a mapping: {expected}; got a {type(data).__name__}")
        )
    return data, positions


# ---------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Schema:
    """How to explain a model's validation errors in a file's terms."""

    root: type[BaseModel]
    # A field name -> the model of its value (or of its list's items), for unknown keys.
    nested: dict[str, type[BaseModel]] = field(default_factory=dict)
    # Extra advice for an unknown key at loc (e.g. "options go under ...").
    unknown_key_hint: Callable[[Loc, str], str] | None = None
    # Messages for lists that are too short, by location.
    too_short: dict[Loc, str] = field(default_factory=dict)
    # What a field's mapping holds, for a value that is not one (else "a mapping").
    mappings: dict[str, str] = field(default_factory=dict)

    def known_fields(self, loc: Loc) -> list[str]:
        """Field names allowed in the mapping that holds ``loc``'s last key."""
        model: type[BaseModel] = self.root
        for part in loc[:-1]:
            if isinstance(part, int):
                continue
            nested = self.nested.get(str(part))
            if nested is None:
                return []
            model = nested
        return list(model.model_fields)


_SHOW_VALUE = {
    "model_type", "dict_type", "list_type", "string_type", "int_type", "float_type",
    "int_parsing", "float_parsing", "bool_type", "bool_parsing", "int_from_float",
}  # fmt: skip

# What a value of each kind is, in a file's terms, for errors that name only a kind.
_KINDS = {
    "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true/false", "bool_parsing": "true/false", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping",
}  # fmt: skip
_BOUNDS = {
    "greater_than_equal": ("ge", "from {} up"), "greater_than": ("gt", "above {}"),
    "less_than_equal": ("le", "up to {}"), "less_than": ("lt", "below {}"),
}  # fmt: skip


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


MAX_PROBLEMS = 20  # problems listed for one file

_SHORT = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 2, 4, 4
_SHORT.maxstring = _SHORT.maxother = 60


def shown(value: Any) -> str:
    """A value from the file as an error quotes it: short, so the error stays one line."""
    return _SHORT.repr(value)


def _mapping(loc: Loc, schema: Schema) -> str:
    last = loc[-1] if loc else None
    return schema.mappings.get(last, "a mapping") if isinstance(last, str) else "a mapping"


def explain(error: Any, positions: PositionMap, schema: Schema, loc: Loc | None = None) -> str:
    """One pydantic error as ``FILE:LINE:COL: FIELD: what was expected``; ``loc`` is the
    error's place in the file when it differs from pydantic's (union branches removed)."""
    if loc is None:
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = schema.known_fields(loc)
        hint = difflib.get_close_matches(key, known, n=1)
        message = f"unknown key {key!r}"
        if hint:
            message += f" (did you mean {hint[0]!r}?)"
        elif known:
            message += f"; expected one of: {', '.join(known)}"
        if not hint and schema.unknown_key_hint is not None:
            message += schema.unknown_key_hint(loc, key)
        return positions.describe(loc, message, key=True)
    if kind == "missing":
        return positions.describe(loc, "required field is missing")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return positions.describe(loc, f"expected one of {expected}; got {shown(value)}")
    if kind == "too_short" and loc in schema.too_short:
        count = len(value) if isinstance(value, list) else 0
        return positions.describe(loc, f"{schema.too_short[loc]}; got {count}")
    if kind in ("model_type", "dict_type"):  # pydantic names the internal class
        return positions.describe(loc, f"expected {_mapping(loc, schema)}; got {shown(value)}")
    if kind in _BOUNDS and _is_nan(value):  # NaN fails every bound: the bound is not the fault
        return positions.describe(loc, "must be a number, not NaN")
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind in _SHOW_VALUE:
        message = f"{message}; got {shown(value)}"
    return positions.describe(loc, message)


def _branch(error: Any, tag: str) -> str:
    """What one branch of a union expected, from its error and pydantic's tag for it."""
    kind = error["type"]
    if kind == "literal_error":
        return str(error.get("ctx", {}).get("expected", tag))
    if kind in _KINDS:
        return _KINDS[kind]
    noun = "a whole number" if "int" in tag else "a number" if "float" in tag else tag
    if kind in _BOUNDS:
        name, phrase = _BOUNDS[kind]
        return f"{noun} {phrase.format(error.get('ctx', {}).get(name))}"
    return noun


def _split(error: Any, data: Any, schema: Schema) -> tuple[Loc, int | None, str]:
    """An error's place in the file, where a union's branch tag was cut out of it (the
    length of the place up to it, or None), and that tag.

    pydantic puts a tag ("constrained-int", "literal['all']", a class name) into the
    location of each error inside a union's branch; a tag is a part that names nothing in
    the data, other than a missing field's own name or a field of the model at that place
    (a value the model reshapes first, such as an entrant given as a bare model name).
    """
    loc, cut, tag = error["loc"], None, ""
    real: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(part, int) or (isinstance(node, dict) and part in node):
            real.append(part)
            inside = (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            )
            node = node[part] if inside else None
        elif part == "[key]":  # a mapping's key was at fault: its place is the key's own
            continue
        elif "[" not in part and (
            (i == len(loc) - 1 and error["type"] == "missing")
            or part in schema.known_fields((*real, part))
        ):
            real.append(part)
            node = None
        elif cut is None:
            cut, tag = len(real), part
    return tuple(real), cut, tag


def _explain_all(errors: list[Any], data: Any, positions: PositionMap, schema: Schema) -> list[str]:
    """Each error as one line, and each union that matched no branch as one line in all."""
    problems: list[str] = []
    unions: dict[Loc, list[tuple[Any, Loc, str]]] = {}
    for error in errors:
        loc, cut, tag = _split(error, data, schema)
        if cut is None:
            problems.append(explain(error, positions, schema, loc))
        else:
            unions.setdefault(loc[:cut], []).append((error, loc, tag))
    for at, branches in unions.items():
        # A value of a branch's kind with a fault inside: that fault is what to fix.
        inner = [(error, loc) for error, loc, _ in branches if len(loc) > len(at)]
        if inner:
            problems.extend(explain(error, positions, schema, loc) for error, loc in inner)
            continue
        value = branches[0][0].get("input")
        kinds = list(dict.fromkeys(_branch(error, tag) for error, _, tag in branches))
        if "a number" in kinds and "a whole number" in kinds:
            kinds.remove("a whole number")
        expected = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
        got = "NaN" if _is_nan(value) else shown(value)
        problems.append(positions.describe(at, f"expected {expected}; got {got}"))
    return problems


def line_of(problem: str) -> tuple[int, int]:
    match = re.match(r".*?:(\d+):(\d+): ", problem)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def validate(
    data: dict[str, Any],
    positions: PositionMap,
    schema: Schema,
    cross_check: Callable[[Any], list[tuple[Loc, str]]] | None = None,
) -> Any:
    """``data`` as ``schema.root``, or ConfigError with every problem, one located line each,
    in file order (duplicate keys and the ``cross_check``'s findings included)."""
    problems = [
        positions.describe(loc, f"duplicate key {loc[-1]!r}", key=True)
        for loc, _ in positions.duplicates
    ]
    try:
        model = schema.root.model_validate(data)
    except ValidationError as exc:
        problems.extend(_explain_all(exc.errors(), data, positions, schema))
        raise ConfigError(_listed(problems, positions.source)) from None
    if cross_check is not None:
        problems.extend(positions.describe(loc, msg) for loc, msg in cross_check(model))
    if problems:
        raise ConfigError(_listed(problems, positions.source))
    return model


def _listed(problems: list[str], source: str) -> list[str]:
    """Problems in file order, at most MAX_PROBLEMS of them (a list of 2,000 bad items
    would bury the rest), and how many more there are."""
    ordered = sorted(problems, key=line_of)
    if len(ordered) <= MAX_PROBLEMS:
        return ordered
    more = len(ordered) - MAX_PROBLEMS
    return [*ordered[:MAX_PROBLEMS], f"{source}: {more} more problems not shown"]
