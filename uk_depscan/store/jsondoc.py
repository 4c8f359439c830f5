"""Strict JSON for the cache's rows: every row is untrusted (README "Cache"), so a row that is not
UTF-8, not JSON, nests too deep, holds NaN/Infinity or an integer past Python's digit limit is
refused with the caller's own error — the same checks for the scan, reach, path and literal
entries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def strict_json(raw: bytes, what: str, error: Callable[[str], Exception]) -> Any:
    """``raw`` parsed, or ``error("<what> is not valid JSON: …")`` raised."""

    def reject_constant(name: str) -> Any:
        raise error(f"non-finite number {name} in the JSON")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # ValueError: JSON, int digit limit
        raise error(f"{what} is not valid JSON: {str(err)[:80]}") from err


def entry_meta(
    meta: bytes, key: str, fields: frozenset[str], version: int, error: Callable[[str], Exception]
) -> dict[str, Any]:
    """The ``meta`` object of a versioned entry: exactly ``fields``, this ``format`` and this ``key``."""
    doc = strict_json(meta, "meta", error)
    if type(doc) is not dict or doc.keys() != fields:
        raise error(f"meta: not an object with the fields {sorted(fields)}")
    if type(doc["format"]) is not int or doc["format"] != version or doc["key"] != key:
        raise error("format or key is not this entry's")
    return doc
