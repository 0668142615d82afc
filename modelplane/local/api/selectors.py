"""Label and field selectors, the `?labelSelector=` and `?fieldSelector=` of list and watch.

Label selectors take Kubernetes' forms, joined by commas: `key=value`, `key==value`, `key!=value`
(which objects without the label match too), `key` (has the label), `!key` (has not), `key in (a,b)`,
`key notin (a,b)` (or has not the label), and `key>N`, `key<N` (a label whose value is a whole number
greater or smaller). Keys and values are checked as Kubernetes checks them. Field selectors take
`metadata.name` and `metadata.namespace` with `=`, `==` or `!=`, and for events also the fields
Kubernetes selects events by (`involvedObject.name`, `.kind`, `.uid`..., `reason`, `type`), which
`kubectl describe` asks for; another field is refused as Kubernetes refuses it, `field label not
supported: spec.x`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from modelplane.local.api.errors import BadRequest
from modelplane.local.api.meta import label_value_problem, qualified_name_problem

Matcher = Callable[[dict[str, Any]], bool]

_OBJECT_FIELDS = ("metadata.name", "metadata.namespace")  # what a custom resource is selected by
_EVENT_FIELDS = (
    *_OBJECT_FIELDS,
    *(
        f"involvedObject.{field}"
        for field in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    ),
    "reason",
    "reportingComponent",
    "source",
    "type",
)


def _field(obj: dict[str, Any], path: str) -> str:
    if path == "source":  # Kubernetes selects events by `source.component`, under the name `source`
        path = "source.component"
    value: Any = obj
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def parse_selectors(
    label_selector: str | None, field_selector: str | None, *, events: bool = False
) -> Matcher:
    """One predicate for both selectors (of events, or of other objects); BadRequest for one it
    cannot read."""
    fields = _EVENT_FIELDS if events else _OBJECT_FIELDS
    tests = [*_label_tests(label_selector or ""), *_field_tests(field_selector or "", fields)]
    return lambda obj: all(test(obj) for test in tests)


def _split_requirement(requirement: str) -> tuple[str, str, str] | None:
    for operator in ("!=", "==", "="):
        key, found, value = requirement.partition(operator)
        if found:
            return key.strip(), operator, value.strip()
    return None


_KEY = r"(?P<key>[^\s!=<>(),]+)"
_EXISTS = re.compile(rf"^(?P<negate>!?)\s*{_KEY}$")
_EQUALITY = re.compile(rf"^{_KEY}\s*(?P<operator>==|=|!=)\s*(?P<value>[^\s!=<>(),]*)$")
_SET = re.compile(rf"^{_KEY}\s+(?P<operator>in|notin)\s*\((?P<values>[^()]*)\)$")
_COMPARISON = re.compile(rf"^{_KEY}\s*(?P<operator>[<>])\s*(?P<value>-?[0-9]+)$")


def _requirements(selector: str) -> list[str]:
    """The selector's requirements: split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(selector[start:index])
            start = index + 1
    parts.append(selector[start:])
    return [part.strip() for part in parts if part.strip()]


def _label_tests(selector: str) -> list[Matcher]:
    return [_label_test(requirement) for requirement in _requirements(selector)]


def _label_test(requirement: str) -> Matcher:
    if found := _EXISTS.match(requirement):
        key, negate = _checked_key(found["key"], requirement), bool(found["negate"])
        return lambda obj: (key in _labels(obj)) != negate
    if found := _EQUALITY.match(requirement):
        key, value = _checked_key(found["key"], requirement), _checked_value(found["value"], requirement)
        if found["operator"] == "!=":
            return lambda obj: _labels(obj).get(key) != value
        return lambda obj: _labels(obj).get(key) == value
    if found := _SET.match(requirement):
        key = _checked_key(found["key"], requirement)
        if not found["values"].strip():
            raise BadRequest(
                f"unable to parse requirement: {requirement!r}: {found['operator']} needs values"
            )
        values = frozenset(_checked_value(v.strip(), requirement) for v in found["values"].split(","))
        if found["operator"] == "in":
            return lambda obj: _labels(obj).get(key) in values
        return lambda obj: _labels(obj).get(key) not in values
    if found := _COMPARISON.match(requirement):
        key, bound = _checked_key(found["key"], requirement), int(found["value"])
        greater = found["operator"] == ">"
        return lambda obj: _compares(_labels(obj).get(key), bound, greater)
    raise BadRequest(f"unable to parse requirement: {requirement!r}")


def _checked_key(key: str, requirement: str) -> str:
    problem = qualified_name_problem(key)
    if problem:
        raise BadRequest(f"unable to parse requirement: {requirement!r}: key {key!r}: {problem}")
    return key


def _checked_value(value: str, requirement: str) -> str:
    problem = label_value_problem(value)
    if problem:
        raise BadRequest(f"unable to parse requirement: {requirement!r}: value {value!r}: {problem}")
    return value


def _compares(label: str | None, bound: int, greater: bool) -> bool:
    try:
        number = int(label) if label is not None else None
    except ValueError:
        return False
    if number is None:
        return False
    return number > bound if greater else number < bound


def _field_tests(selector: str, fields: tuple[str, ...]) -> list[Matcher]:
    tests: list[Matcher] = []
    for requirement in filter(None, (part.strip() for part in selector.split(","))):
        parsed = _split_requirement(requirement)
        if parsed is None:  # Kubernetes' words
            raise BadRequest(f"invalid selector: '{selector}'; can't understand '{requirement}'")
        if parsed[0] not in fields:
            raise BadRequest(f"field label not supported: {parsed[0]}")
        key, operator, value = parsed
        if operator == "!=":
            tests.append(lambda obj, k=key, v=value: _field(obj, k) != v)
        else:
            tests.append(lambda obj, k=key, v=value: _field(obj, k) == v)
    return tests


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}
