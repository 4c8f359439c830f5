"""Checking a JSON document against the committed report schema, without a runtime dependency.

Implements exactly the JSON Schema keywords ``report-v1.schema.json`` uses (``type``, ``enum``,
``const``, ``properties``, ``required``, ``additionalProperties``, ``items``, ``minItems``,
``minimum``, ``pattern``); any other keyword in the schema is refused, so the schema cannot grow a
constraint this checker would silently skip.  tests/test_json_report.py checks it agrees with the
``jsonschema`` package on valid and broken documents.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "report-v1.schema.json"
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})
_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "minimum",
        "pattern",
    }
)
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@lru_cache(maxsize=1)
def report_schema() -> dict[str, Any]:
    text = (resources.files("uk_depscan") / "report" / "schema" / SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def first_problem(doc: object, schema: dict[str, Any] | None = None) -> str | None:
    """``None`` when ``doc`` is valid, else one line: where (a JSON pointer) and what is wrong."""
    return _check(doc, report_schema() if schema is None else schema, "")


def _is(value: object, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # JSON Schema: true/false are not numbers, although Python's bool is an int
    return isinstance(value, _TYPES[name])


def _check(value: object, schema: dict[str, Any], where: str) -> str | None:
    unknown = set(schema) - _KEYWORDS - _ANNOTATIONS
    if unknown:
        raise ValueError(f"schema at {where or '/'} uses unsupported keywords {sorted(unknown)}")
    at = where or "/"
    types = schema.get("type")
    if types is not None and not any(_is(value, t) for t in ([types] if isinstance(types, str) else types)):
        return f"{at}: expected {' or '.join([types] if isinstance(types, str) else types)}"
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        return f"{at}: {value!r} is not one of {schema['enum']}"
    if "const" in schema and not _same(value, schema["const"]):
        return f"{at}: expected {schema['const']!r}"
    if isinstance(value, dict):
        return _check_object(value, schema, where)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{at}: fewer than {schema['minItems']} items"
        items: dict[str, Any] = schema.get("items", {})
        for i, item in enumerate(value):
            problem = _check(item, items, f"{where}/{i}")
            if problem:
                return problem
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < schema.get("minimum", value):
        return f"{at}: less than {schema['minimum']}"
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        return f"{at}: does not match {schema['pattern']}"
    return None


def _check_object(value: dict[str, Any], schema: dict[str, Any], where: str) -> str | None:
    for key in schema.get("required", ()):
        if key not in value:
            return f"{where or '/'}: missing {key!r}"
    props: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        sub = props.get(key, extra)
        if sub is False:
            return f"{where or '/'}: unexpected key {key!r}"
        if isinstance(sub, dict):
            problem = _check(item, sub, f"{where}/{key}")
            if problem:
                return problem
    return None


def _same(a: object, b: object) -> bool:
    """JSON equality: 1 and True differ."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b
