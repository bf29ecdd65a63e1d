"""Structured output for the fake servers: a JSON document that follows a given schema.

Real servers constrain sampling with a grammar built from the schema; the fakes answer
with a deterministic instance of it (enum choices picked by a seed), enough to test that
schemas reach the server and structured replies come back through every backend.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _pick(options: list[Any], seed: str) -> Any:
    return options[hashlib.sha256(seed.encode()).digest()[0] % len(options)]


def instance(schema: Any, seed: str = "") -> Any:
    """A value valid against ``schema`` (the subset of JSON Schema judges and tests use)."""
    if not isinstance(schema, dict):
        return {}
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return _pick(list(schema["enum"]), seed)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: instance(sub, f"{seed}/{name}") for name, sub in props.items()}
    if kind == "array":
        count = max(1, schema.get("minItems", 1))
        return [instance(schema.get("items") or {}, f"{seed}/0")] * count
    if kind == "string":
        return _pick(["A short reason.", "Because it is so.", "The argument held."], seed)
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return bool(_pick([True, False], seed))
    return None


def reply(schema: Any, seed: str = "") -> str:
    """The reply text a structured request gets: the instance, as JSON."""
    if schema == "json":  # ollama's plain JSON mode
        return json.dumps({"reply": "ok"})
    return json.dumps(instance(schema, seed))
