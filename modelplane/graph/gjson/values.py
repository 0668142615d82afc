"""JSON values as the GJSON evaluator sees them, and the few Go conversions it must copy.

A document is already-parsed JSON: dict, list, str, int, float, bool or None. "Nothing selected" is the
`MISSING` marker, because None is JSON null, which exists.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

import orjson


class _Missing:
    """The marker for a path that selects nothing (Go gjson's `Exists() == false`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def is_container(value: Any) -> bool:
    return isinstance(value, dict | list)


def to_json(value: Any) -> str:
    """Compact JSON text of a value; "" for MISSING."""
    if value is MISSING:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        # gjson literals can make these; JSON has no spelling for them.
        return "NaN" if math.isnan(value) else ("-Inf" if value < 0 else "Inf")
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. an integer beyond 64 bits, which orjson does not write
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def go_bool(value: Any) -> bool:
    """Go gjson's `Result.Bool()`: true, a non-zero number, or a string strconv.ParseBool accepts as true."""
    if value is True:
        return True
    if isinstance(value, str):
        return value.lower() in ("1", "t", "true")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    return False


# Go's float syntax; an underscore may separate two digits ("1_000"), which Python's float() also accepts.
_DIGITS = r"\d+(?:_\d+)*"
_HEX_DIGITS = r"[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*"
_DECIMAL = re.compile(rf"[+-]?(?:{_DIGITS}\.?(?:{_DIGITS})?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?")
_HEX_FLOAT = re.compile(
    rf"[+-]?0[xX]_?(?:{_HEX_DIGITS}\.?(?:{_HEX_DIGITS})?|\.{_HEX_DIGITS})[pP][+-]?{_DIGITS}"
)
_INFINITY = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)


def go_parse_float(text: str) -> float:
    """Go's `strconv.ParseFloat(text, 64)` where gjson ignores the error: unparseable text gives 0."""
    if _DECIMAL.fullmatch(text):
        return float(text)  # out of range gives ±inf, as Go does
    if _INFINITY.fullmatch(text):
        return -math.inf if text[0] == "-" else math.inf
    if text.lower() == "nan":
        return math.nan
    if _HEX_FLOAT.fullmatch(text):
        try:
            return float.fromhex(text.replace("_", ""))
        except OverflowError:
            return -math.inf if text[0] == "-" else math.inf
    return 0.0


def as_float(number: int | float) -> float:
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


_SIMPLE_ESCAPES: Final = {
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    '"': '"',
}


def go_unescape(text: str) -> str:
    """Go gjson's `unescape`: JSON string escapes; it stops at a control character or a bad escape."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char < " ":
            break
        if char != "\\":
            out.append(char)
            i += 1
            continue
        i += 1
        if i >= n:
            break
        code = text[i]
        if code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
            i += 1
            continue
        if code != "u" or i + 5 > n:
            break
        rune = _hex4(text[i + 1 : i + 5])
        i += 5
        if 0xD800 <= rune < 0xE000 and text[i : i + 2] == "\\u" and i + 6 <= n:
            low = _hex4(text[i + 2 : i + 6])
            rune = 0x10000 + ((rune - 0xD800) << 10) + (low - 0xDC00) if 0xDC00 <= low < 0xE000 else 0xFFFD
            i += 6
        elif 0xD800 <= rune < 0xE000:
            rune = 0xFFFD
        out.append(chr(rune))
    return "".join(out)


def _hex4(digits: str) -> int:
    try:
        return int(digits, 16)
    except ValueError:
        return 0


def go_parse(text: str) -> Any:
    """Go gjson's lenient `Parse` of a literal: only the first token's kind is looked at."""
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        return MISSING
    first = stripped[0]
    if first in "{[":
        try:
            return orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return MISSING
    if first in "+-0123456789iIN" or (first == "n" and stripped[1:2] not in ("u", "")):
        return go_parse_float(re.split(r"[\s,\]}]", stripped, maxsplit=1)[0])
    if first == "n":
        return None
    if first == "t":
        return True
    if first == "f":
        return False
    if first == '"':
        end = _closing_quote(stripped)
        if end == len(stripped):
            return stripped[1:]  # unterminated: Go keeps the rest as it is
        return go_unescape(stripped[1:end])
    return MISSING


def _closing_quote(text: str) -> int:
    """Index of the quote that closes the string opening at text[0], or len(text)."""
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return len(text)
