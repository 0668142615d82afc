"""Parsing a document for GJSON paths so that duplicate keys resolve as Go's gjson resolves them.

Go's gjson reads the document's text: a key selects the first member of that name (names compared after
unescaping, so `"a\\u0062"` is `ab`), and a path that goes on past the key tries each member of that
name in turn until one has the rest. A parsed dict keeps one member per key, so an object with a key
twice is parsed into `DuplicateKeys`: a dict of the first member of each name, with every member, in
order, in `pairs`. Documents without duplicates (nearly all) are parsed by orjson alone.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

# A JSON string followed by a colon: an object's key. In valid JSON, each `"` found from the start
# opens or closes a string, so scanning string by string never starts inside one. The runs between
# escapes are matched whole: an alternation per character took seconds on a string of megabytes.
_STRING_OR_KEY = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?', re.DOTALL)
_JSON_START = re.compile(rb'[ \t\n\r]*[-\[{"0-9tfn]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class DuplicateKeys(dict):
    """An object with a key more than once: the first member of each name, and `pairs`, all of them."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        for key, value in pairs:
            self.setdefault(key, value)
        self.pairs = pairs


def parse_document(raw: bytes | str, parsed: Any = None) -> Any:
    """The parsed JSON of a document; raises ValueError when it is not JSON. `parsed` is the document
    already parsed by orjson, when there is one.

    What orjson refuses is read as Go's gjson reads it, which checks the syntax only: a number beyond
    float64 is infinity, bytes that are not UTF-8 and lone surrogate escapes are U+FFFD (where Go
    compares such bytes as they are)."""
    if parsed is None:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return loads_as_go(raw, huge_numbers=True, object_pairs_hook=_object)
    document = parsed
    if isinstance(document, dict | list):
        text = raw.encode() if isinstance(raw, str) else raw
        if _key_count(text) != _parsed_key_count(document):
            try:
                return json.loads(text, object_pairs_hook=_object)
            except RecursionError:
                raise ValueError("the document nests too deep to read its duplicate keys") from None
    return document


def loads_as_go(raw: bytes | str, *, huge_numbers: bool, object_pairs_hook: Any = None) -> Any:
    """JSON as Go reads it where orjson refuses it (slower, for those documents only): bytes that are
    not UTF-8 and lone surrogate escapes are U+FFFD, as Go's encoding/json has them; a number beyond
    float64 is +-infinity with `huge_numbers` (gjson), else refused (encoding/json). Raises ValueError
    when it is not JSON."""
    if isinstance(raw, bytes):
        if not _JSON_START.match(raw):  # a body that is no JSON at all is not decoded to find it out
            raise ValueError("not JSON")
        text = raw.decode("utf-8", "replace")
    else:
        text = raw
    number = _huge_number if huge_numbers else _float64

    def integer(digits: str) -> int | float:
        if len(digits) <= 20 and -(2**63) <= (value := int(digits)) < 2**64:
            return value
        return number(digits)  # as orjson has it: a float beyond 64 bits

    try:
        document = json.loads(
            text,
            parse_float=number,
            parse_int=integer,
            parse_constant=_not_json,
            object_pairs_hook=object_pairs_hook,
        )
        if _SURROGATE_ESCAPE.search(text):
            document = _without_surrogates(document)
    except RecursionError:
        raise ValueError("the document nests too deep") from None
    return document


def _huge_number(digits: str) -> float:
    return float(digits)


def _float64(digits: str) -> float:
    value = float(digits)
    if math.isinf(value):
        raise ValueError(f"the number {digits[:20]} is beyond float64")
    return value


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _without_surrogates(value: Any) -> Any:
    """The document with each lone surrogate (from an escape like `\\ud800`) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, DuplicateKeys):
        return DuplicateKeys([(_without_surrogates(k), _without_surrogates(v)) for k, v in value.pairs])
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


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
