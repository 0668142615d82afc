"""Parsing a document for GJSON paths so that duplicate keys resolve as Go's gjson resolves them.

Go's gjson reads the document's text: a key selects the first member of that name (names compared after
unescaping, so `"a\\u0062"` is `ab`), and a path that goes on past the key tries each member of that
name in turn until one has the rest. A parsed dict keeps one member per key, so an object with a key
twice is parsed into `DuplicateKeys`: a dict of the first member of each name, with every member, in
order, in `pairs`. Documents without duplicates (nearly all) are parsed by orjson alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# A JSON string followed by a colon: an object's key. In valid JSON, each `"` found from the start
# opens or closes a string, so scanning string by string never starts inside one. The runs between
# escapes are matched whole: an alternation per character took seconds on a string of megabytes.
_STRING_OR_KEY = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?', re.DOTALL)


class DuplicateKeys(dict):
    """An object with a key more than once: the first member of each name, and `pairs`, all of them."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        for key, value in pairs:
            self.setdefault(key, value)
        self.pairs = pairs


def parse_document(raw: bytes | str, parsed: Any = None) -> Any:
    """The parsed JSON of a document; raises ValueError (orjson.JSONDecodeError) when it is not JSON.
    `parsed` is the document already parsed by orjson, when there is one."""
    document = orjson.loads(raw) if parsed is None else parsed
    if isinstance(document, dict | list):
        text = raw.encode() if isinstance(raw, str) else raw
        if _key_count(text) != _parsed_key_count(document):
            try:
                return json.loads(text, object_pairs_hook=_object)
            except RecursionError:
                raise ValueError("the document nests too deep to read its duplicate keys") from None
    return document


def _parsed_key_count(document: dict | list) -> int:
    """The keys of every object in a parsed document (a duplicate key of the text counts once)."""
    count, stack = 0, [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += len(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


def _key_count(text: bytes) -> int:
    return sum(1 for match in _STRING_OR_KEY.finditer(text) if match.group(1) is not None)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = {key for key, _ in pairs}
    return dict(pairs) if len(keys) == len(pairs) else DuplicateKeys(pairs)
