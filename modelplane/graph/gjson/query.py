"""The test inside a query `#(path op value)`, with Go gjson's type rules.

The kind of the *selected value* decides how it is compared with the right-hand side, which is text:
- a string is compared as text (`%` and `!%` are wildcard matches);
- a number is compared with the right-hand side read as a float (text that is not a number reads as 0);
- true and false are compared with the text "true" / "false" (true sorts above false);
- null, objects and arrays only pass a query without an operator (`#(key)`, "the key exists").
A right-hand side of `~true`, `~false`, `~null` or `~*` first turns the value into a boolean.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from modelplane.graph.gjson.glob import compile_glob
from modelplane.graph.gjson.values import MISSING, as_float, go_bool, go_parse_float

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "%", "!%")

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

# How true and false compare with the right-hand side text, as in Go gjson.
_TRUE: dict[str, Callable[[str], bool]] = {
    "=": lambda rhs: rhs == "true",
    "!=": lambda rhs: rhs != "true",
    ">": lambda rhs: rhs == "false",
    ">=": lambda rhs: True,
}
_FALSE: dict[str, Callable[[str], bool]] = {
    "=": lambda rhs: rhs == "false",
    "!=": lambda rhs: rhs != "false",
    "<": lambda rhs: rhs == "true",
    "<=": lambda rhs: True,
}


def _truthy(value: Any) -> bool:
    return value is not MISSING and go_bool(value)


def _falsy(value: Any) -> bool:
    if value is MISSING or value is None or value is False:
        return True
    if isinstance(value, str):
        return value.lower() in ("0", "f", "false")
    if isinstance(value, int | float) and value is not True:
        return value == 0
    return False


_TILDE: dict[str, Callable[[Any], bool]] = {
    "*": lambda value: value is not MISSING,
    "null": lambda value: value is MISSING or value is None,
    "true": _truthy,
    "false": _falsy,
}


class Comparison:
    """`op value` of a query, ready to test selected values; everything that depends only on the
    operator and the right-hand side is worked out here, once."""

    __slots__ = ("op", "rhs", "_tilde", "_on_true", "_on_false", "_on_string", "_on_number")

    def __init__(self, op: str, rhs: str) -> None:
        self.op = op
        self.rhs = rhs
        self._tilde = _TILDE.get(rhs[1:], _never) if rhs.startswith("~") else None
        text = "true" if self._tilde is not None else rhs  # a `~` test compares a boolean with true
        self._on_true = _TRUE.get(op, _never)(text)
        self._on_false = _FALSE.get(op, _never)(text)
        self._on_string = _string_test(op, rhs)
        self._on_number = _number_test(op, go_parse_float(rhs))

    def test(self, value: Any) -> bool:
        """Whether a selected value (or MISSING) passes."""
        if self._tilde is not None:
            if self._tilde is _never:
                return False
            value = self._tilde(value)
        if value is MISSING:
            return False
        if not self.op:
            return True
        if value is True:
            return self._on_true
        if value is False:
            return self._on_false
        if isinstance(value, str):
            return self._on_string(value)
        if isinstance(value, int | float):
            return self._on_number(as_float(value))
        return False


def _string_test(op: str, rhs: str) -> Callable[[str], bool]:
    if op in ("%", "!%"):
        glob, wanted = compile_glob(rhs), op == "%"
        return lambda value: glob.matches(value) is wanted
    compare = _ORDER.get(op)
    if compare is None:
        return _never
    return lambda value: compare(value, rhs)


def _number_test(op: str, rhs: float) -> Callable[[float], bool]:
    compare = _ORDER.get(op)
    if compare is None:
        return _never
    return lambda value: compare(value, rhs)


def _never(*_: Any) -> bool:
    return False
