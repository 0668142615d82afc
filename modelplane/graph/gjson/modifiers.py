"""GJSON's built-in modifiers (`@this`, `@reverse`, ...), applied to parsed values.

Each modifier is a factory: given the text of its argument (after `:`, possibly empty) and a way to
compile a path, it returns the function applied to each value. The argument is read once, at compile time.
Values are parsed JSON or MISSING; a modifier returns MISSING where Go gjson returns an empty string.
`@pretty` and `@ugly` only change the formatting of the JSON text, so on parsed values they are `@this`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from modelplane.graph.gjson.values import MISSING, go_bool, go_parse, to_json

Modifier = Callable[[Any], Any]
CompileGet = Callable[[str], Any]  # path text -> a node with .get(value)


def _option(arg: str, name: str) -> bool:
    """A boolean option of a JSON-object argument, e.g. `@flatten:{"deep":true}`."""
    try:
        options = orjson.loads(arg) if arg else {}
    except orjson.JSONDecodeError:
        return False
    return isinstance(options, dict) and go_bool(options.get(name))


def _this(arg: str, compile_get: CompileGet) -> Modifier:
    return lambda value: value


def _reverse(arg: str, compile_get: CompileGet) -> Modifier:
    def reverse(value: Any) -> Any:
        if isinstance(value, list):
            return value[::-1]
        if isinstance(value, dict):
            return dict(reversed(value.items()))
        return value

    return reverse


def _flatten(arg: str, compile_get: CompileGet) -> Modifier:
    deep = _option(arg, "deep")

    def flatten(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        flat: list[Any] = []
        # An explicit stack keeps deep flattening off the Python call stack.
        stack = [iter(value)]
        while stack:
            item = next(stack[-1], MISSING)
            if item is MISSING:
                stack.pop()
            elif isinstance(item, list) and (deep or len(stack) == 1):
                stack.append(iter(item))
            else:
                flat.append(item)
        return flat

    return flatten


def _keys(arg: str, compile_get: CompileGet) -> Modifier:
    def keys(value: Any) -> Any:
        if value is MISSING:
            return []
        if isinstance(value, dict):
            return list(value)
        return [None] * (len(value) if isinstance(value, list) else 1)

    return keys


def _values(arg: str, compile_get: CompileGet) -> Modifier:
    def values(value: Any) -> Any:
        if value is MISSING:
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            return list(value.values())
        return [value]

    return values


def _join(arg: str, compile_get: CompileGet) -> Modifier:
    # With preserve, Go keeps duplicate keys in its text and a lookup finds the first one.
    preserve = _option(arg, "preserve")

    def join(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        joined: dict[str, Any] = {}
        for item in value:
            if isinstance(item, dict):
                for key, member in item.items():
                    if preserve:
                        joined.setdefault(key, member)
                    else:
                        joined[key] = member
        return joined

    return join


def _valid(arg: str, compile_get: CompileGet) -> Modifier:
    return lambda value: value


def _tostr(arg: str, compile_get: CompileGet) -> Modifier:
    return lambda value: to_json(value)


def _fromstr(arg: str, compile_get: CompileGet) -> Modifier:
    def fromstr(value: Any) -> Any:
        if value is MISSING or value is None:
            return MISSING
        if isinstance(value, str):
            return go_parse(value)
        return value

    return fromstr


def _group(arg: str, compile_get: CompileGet) -> Modifier:
    def group(value: Any) -> Any:
        if not isinstance(value, dict):
            return MISSING
        rows: list[dict[str, Any]] = []
        for key, column in value.items():
            if isinstance(column, list):
                for index, cell in enumerate(column):
                    if index == len(rows):
                        rows.append({})
                    rows[index].setdefault(key, cell)
        return rows

    return group


def _dig(arg: str, compile_get: CompileGet) -> Modifier:
    path = compile_get(arg)

    def dig(value: Any) -> Any:
        found: list[Any] = []
        stack = [value]
        while stack:
            node = stack.pop()
            selected = path.get(node)
            if selected is not MISSING:
                found.append(selected)
            if isinstance(node, dict):
                stack.extend(reversed(node.values()))
            elif isinstance(node, list):
                stack.extend(reversed(node))
        return found

    return dig


MODIFIERS: dict[str, Callable[[str, CompileGet], Modifier]] = {
    "this": _this,
    "reverse": _reverse,
    "flatten": _flatten,
    "keys": _keys,
    "values": _values,
    "join": _join,
    "valid": _valid,
    "ugly": _this,
    "pretty": _this,
    "tostr": _tostr,
    "fromstr": _fromstr,
    "group": _group,
    "dig": _dig,
}
