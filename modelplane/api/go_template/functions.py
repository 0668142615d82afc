"""The builtin functions (`and`, `index`, `printf`, `eq`...) and kubectl's two more (`exists`,
`base64decode`), each failing with Go's words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .fmt import (
    Base64Error,
    go_base64_decode,
    go_sprint,
    go_sprintf,
    go_sprintln,
    go_type_name,
    go_value_string,
    html_escape,
)
from .values import MISSING, truth


class CallError(Exception):
    """A builtin function's error, said as `error calling NAME: ...`."""


@dataclass
class Function:
    body: Callable[..., Any]
    arity: int = 0
    variadic_from: int | None = None  # at least this many arguments, any number more
    lazy: bool = False
    takes_string: bool = False  # the first parameter is a Go string, checked as Go checks it


def _and(*thunks: Callable[[], Any]) -> Any:
    value = MISSING
    for thunk in thunks:
        value = thunk()
        if not truth(value):
            return value
    return value


def _or(*thunks: Callable[[], Any]) -> Any:
    value = MISSING
    for thunk in thunks:
        value = thunk()
        if truth(value):
            return value
    return value


def _len(item: Any) -> int:
    if item is MISSING or item is None:
        raise CallError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, list | tuple | dict):
        return len(item)
    raise CallError(f"len of type {go_type_name(item)}")


def _int_index(value: Any, cap: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if value is MISSING or value is None:
            raise CallError("cannot index slice/array with nil")
        raise CallError(f"cannot index slice/array with type {go_type_name(value)}")
    if value < 0 or value >= cap:
        raise CallError(f"index out of range: {value}")
    return value


def _index(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise CallError("index of untyped nil")
    for key in indexes:
        if isinstance(item, str):
            item = item.encode()[_int_index(key, len(item.encode()))]
        elif isinstance(item, list | tuple):
            item = item[_int_index(key, len(item))]
        elif isinstance(item, dict):
            if key is MISSING or key is None:
                raise CallError("value is nil; should be string")
            if not isinstance(key, str):
                raise CallError(f"value has type {go_type_name(key)}; should be string")
            item = item.get(key)
        elif item is None or item is MISSING:
            raise CallError("index of nil pointer")
        else:
            raise CallError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        size = len(item.encode())
    elif isinstance(item, list | tuple):
        size = len(item)
    else:
        raise CallError(f"can't slice item of type {go_type_name(item)}")
    bounds = [_int_index(index, size + 1) for index in indexes]
    for first, second in zip(bounds, bounds[1:], strict=False):
        if second < first:
            raise CallError(f"invalid slice index: {first} > {second}")
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else size
    if isinstance(item, str):
        return item.encode()[start:end].decode(errors="replace")
    return list(item[start:end])


_BASIC_KINDS = {"bool": "bool", "int": "int", "int64": "int", "float64": "float", "string": "string"}


def _basic_kind(value: Any) -> str:
    """What Go's comparison functions compare a value as: nil, bool, int, float, string, or other."""
    if value is MISSING or value is None:
        return "nil"
    return _BASIC_KINDS.get(go_type_name(value), "other")


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise CallError("missing argument for comparison")
    kind = _basic_kind(first)
    for other in others:
        other_kind = _basic_kind(other)
        if kind != other_kind:
            if "nil" not in (kind, other_kind):
                raise CallError("incompatible types for comparison")
            continue  # a nil against a value: not equal
        if kind == "nil":
            return True
        if kind == "other":
            raise CallError(f"non-comparable type {go_value_string(other)}: {go_type_name(other)}")
        if first == other:
            return True
    return False


def _ne(first: Any, second: Any) -> bool:
    return not _eq(first, second)


def _less(first: Any, second: Any) -> bool:
    kind, other_kind = _basic_kind(first), _basic_kind(second)
    if kind in ("other", "nil") or other_kind in ("other", "nil"):
        raise CallError("invalid type for comparison")
    if kind != other_kind:
        raise CallError("incompatible types for comparison")
    if kind == "bool":  # a basic kind, which Go orders not (after the kinds are found to differ)
        raise CallError("invalid type for comparison")
    return first < second


def _le(first: Any, second: Any) -> bool:
    return _less(first, second) or _eq(first, second)


def _html(*args: Any) -> str:
    return html_escape(_sprint_args(args))


def _js(*args: Any) -> str:
    out = []
    for char in _sprint_args(args):
        if char in "\\'\"":
            out.append("\\" + char)
        elif char in "<>&=" or ord(char) < 0x20 or not char.isprintable():
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint_args(args), safe="-_.~")


def _sprint_args(args: tuple) -> str:
    """What html, js and urlquery escape: one string as it is, else the arguments as print prints them,
    a nil or missing one as the text `<no value>` (Go's escapers print the invalid value they get)."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return go_sprint(["<no value>" if arg is MISSING or arg is None else arg for arg in args])


def _printf(format_text: str, *args: Any) -> str:
    return go_sprintf(format_text, [None if arg is MISSING else arg for arg in args])


def _not(value: Any) -> bool:
    return not truth(value)


BUILTINS: dict[str, Function] = {
    "and": Function(_and, variadic_from=1, lazy=True),
    "or": Function(_or, variadic_from=1, lazy=True),
    "not": Function(_not, arity=1),
    "len": Function(_len, arity=1),
    "index": Function(_index, variadic_from=1),
    "slice": Function(_slice, variadic_from=1),
    "print": Function(lambda *args: go_sprint([None if a is MISSING else a for a in args]), variadic_from=0),
    "println": Function(
        lambda *args: go_sprintln([None if a is MISSING else a for a in args]), variadic_from=0
    ),
    "printf": Function(_printf, variadic_from=1, takes_string=True),
    "eq": Function(_eq, variadic_from=1),
    "ne": Function(_ne, arity=2),
    "lt": Function(_less, arity=2),
    "le": Function(_le, arity=2),
    "gt": Function(lambda first, second: not _le(first, second), arity=2),
    "ge": Function(lambda first, second: not _less(first, second), arity=2),
    "html": Function(_html, variadic_from=0),
    "js": Function(_js, variadic_from=0),
    "urlquery": Function(_urlquery, variadic_from=0),
}


def _exists(item: Any, *keys: Any) -> bool:
    """kubectl's `exists`: whether the keys (or indexes) lead to a value."""
    for key in keys:
        if (
            isinstance(item, dict)
            and key in item
            or isinstance(item, list)
            and isinstance(key, int)
            and 0 <= key < len(item)
        ):
            item = item[key]
        else:
            return False
    return True


def _base64decode(text: str) -> str:
    """kubectl's base64decode, in its words."""
    try:
        return go_base64_decode(text).decode(errors="replace")
    except Base64Error as error:
        raise CallError(f"base64 decode failed: {error}") from None


KUBECTL_FUNCTIONS: dict[str, Function] = {
    **BUILTINS,
    "exists": Function(_exists, variadic_from=1),
    "base64decode": Function(_base64decode, arity=1, takes_string=True),
}
