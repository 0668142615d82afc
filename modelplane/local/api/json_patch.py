"""JSON Patch (RFC 6902), `kubectl patch --type=json`: a list of operations (`add`, `remove`,
`replace`, `move`, `copy`, `test`), each at a JSON Pointer (RFC 6901), applied in order to a copy of
the stored object, all or none.

As Kubernetes answers: a patch that is not a list of well-formed operations is a 400, one that does
not apply to the object (a path that is not there, a `test` that fails) a 422; at most 10,000
operations.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from modelplane.api.loader import MAX_DEPTH, nested_deeper_than
from modelplane.local.api.errors import BadRequest, Invalid

JSON_PATCH = "application/json-patch+json"
MAX_OPERATIONS = 10_000  # Kubernetes' limit
_NEEDS_VALUE = ("add", "replace", "test")
_NEEDS_FROM = ("move", "copy")
_OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")


class PatchDoesNotApply(Invalid):
    pass


def read_json_patch(raw: bytes) -> list[dict[str, Any]]:
    """The operations of a JSON patch body; BadRequest when it is not one."""
    try:
        operations = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the JSON patch is not valid JSON: {exc}") from None
    if not isinstance(operations, list):
        raise BadRequest(
            "a JSON patch is a list of operations ([{'op': 'replace', 'path': ..., 'value': ...}])"
        )
    if len(operations) > MAX_OPERATIONS:
        raise BadRequest(
            f"the JSON patch has {len(operations)} operations: at most {MAX_OPERATIONS} are allowed"
        )
    if nested_deeper_than(operations, MAX_DEPTH):
        raise BadRequest(f"the JSON patch is nested more than {MAX_DEPTH} levels deep")
    for index, operation in enumerate(operations):
        _check_operation(index, operation)
    return operations


def _check_operation(index: int, operation: Any) -> None:
    where = f"operation {index} of the JSON patch"
    if not isinstance(operation, dict):
        raise BadRequest(f"{where} is not an object")
    op = operation.get("op")
    if op not in _OPERATIONS:
        raise BadRequest(f"{where}: op {op!r} is not one of {', '.join(_OPERATIONS)}")
    for member in ("path", *(("from",) if op in _NEEDS_FROM else ())):
        if not isinstance(operation.get(member), str):
            raise BadRequest(f"{where} ({op}) needs a {member!r} that is a JSON pointer")
        pointer_tokens(operation[member], f"{where}: {member}")
    if op in _NEEDS_VALUE and "value" not in operation:
        raise BadRequest(f"{where} ({op}) needs a 'value'")


def pointer_tokens(pointer: str, where: str = "JSON pointer") -> list[str]:
    """The reference tokens of a JSON pointer: `/spec/a~1b` is ["spec", "a/b"]; "" is the whole document."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise BadRequest(f"{where} {pointer!r} must be empty or start with '/'")
    tokens = []
    for token in pointer[1:].split("/"):
        if "~" in token and any(part[:1] not in ("0", "1") for part in token.split("~")[1:]):
            raise BadRequest(f"{where} {pointer!r}: '~' is written '~0' and '/' '~1'")
        tokens.append(token.replace("~1", "/").replace("~0", "~"))
    return tokens


def apply_json_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> Any:
    """The document after every operation, in order (the argument is not modified); PatchDoesNotApply
    names the first operation that cannot be made."""
    result: Any = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        op, path = operation["op"], operation["path"]
        try:
            result = _apply(result, op, path, operation)
        except _Missing as exc:
            raise PatchDoesNotApply(
                f"the JSON patch does not apply: operation {index} ({op} {path}): {exc}"
            ) from None
    return result


class _Missing(Exception):
    pass


def _apply(document: Any, op: str, path: str, operation: dict[str, Any]) -> Any:
    tokens = pointer_tokens(path)
    if op == "add":
        return _add(document, tokens, copy.deepcopy(operation["value"]))
    if op == "remove":
        _remove(document, tokens)
        return document
    if op == "replace":
        if not tokens:
            return copy.deepcopy(operation["value"])
        _remove(document, tokens)
        return _add(document, tokens, copy.deepcopy(operation["value"]))
    if op == "test":
        found = _get(document, tokens)
        if not _json_equal(found, operation["value"]):
            raise _Missing(f"the value there is {orjson.dumps(found).decode()}, not the one tested")
        return document
    source = pointer_tokens(operation["from"])
    value = _get(document, source)
    if op == "move":
        if tokens[: len(source)] == source and len(tokens) > len(source):
            raise _Missing(f"cannot move {operation['from']} into itself")
        _remove(document, source)
        return _add(document, tokens, value)
    return _add(document, tokens, copy.deepcopy(value))  # copy


def _get(document: Any, tokens: list[str]) -> Any:
    for depth in range(len(tokens)):
        document = document[_slot(document, tokens[: depth + 1])]
    return document


def _slot(container: Any, tokens: list[str]) -> str | int:
    """Where the last of `tokens` points in `container`: a key it has, or the index of an item."""
    token = tokens[-1]
    if isinstance(container, dict):
        if token not in container:
            raise _Missing(f"there is no {_pointer(tokens)}")
        return token
    if isinstance(container, list):
        return _index(container, token, tokens, len(container) - 1)
    raise _Missing(f"{_pointer(tokens[:-1]) or 'the document'} is not an object or a list")


def _add(document: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _get(document, tokens[:-1])
    token = tokens[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(len(parent) if token == "-" else _index(parent, token, tokens, len(parent)), value)
    else:
        raise _Missing(f"{_pointer(tokens[:-1]) or 'the document'} is not an object or a list")
    return document


def _remove(document: Any, tokens: list[str]) -> None:
    if not tokens:
        raise _Missing("the whole document cannot be removed")
    parent = _get(document, tokens[:-1])
    del parent[_slot(parent, tokens)]


def _index(items: list, token: str, tokens: list[str], highest: int) -> int:
    """A list index token: digits without leading zeros, at most `highest`."""
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise _Missing(f"{token!r} in {_pointer(tokens)} is not an index of a list")
    index = int(token)
    if index > highest:
        raise _Missing(f"{_pointer(tokens)} is past the end of a list of {len(items)}")
    return index


def _pointer(tokens: list[str]) -> str:
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: true is not 1, 1 is 1.0, objects compare without order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b
