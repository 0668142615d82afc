"""Label and field selectors, the `?labelSelector=` and `?fieldSelector=` of list and watch.

Label selectors take Kubernetes' equality forms: `key=value`, `key==value`, `key!=value`,
`key` (has the label), `!key` (has not), joined by commas. Field selectors take
`metadata.name` and `metadata.namespace` with `=`, `==` or `!=`, and for events also the fields
Kubernetes selects events by (`involvedObject.name`, `.kind`, `.uid`..., `reason`, `type`), which
`kubectl describe` asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelplane.local.api.errors import BadRequest

Matcher = Callable[[dict[str, Any]], bool]

_SELECTABLE_FIELDS = (
    "metadata.name",
    "metadata.namespace",
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


def parse_selectors(label_selector: str | None, field_selector: str | None) -> Matcher:
    """One predicate for both selectors; BadRequest for one it cannot read."""
    tests = [*_label_tests(label_selector or ""), *_field_tests(field_selector or "")]
    return lambda obj: all(test(obj) for test in tests)


def _split_requirement(requirement: str) -> tuple[str, str, str] | None:
    for operator in ("!=", "==", "="):
        key, found, value = requirement.partition(operator)
        if found:
            return key.strip(), operator, value.strip()
    return None


def _label_tests(selector: str) -> list[Matcher]:
    tests: list[Matcher] = []
    for requirement in filter(None, (part.strip() for part in selector.split(","))):
        parsed = _split_requirement(requirement)
        if parsed is None:
            negate = requirement.startswith("!")
            key = requirement.lstrip("!").strip()
            if not key:
                raise BadRequest(f"unable to parse requirement: {requirement!r}")
            tests.append(lambda obj, k=key, n=negate: (k in _labels(obj)) != n)
            continue
        key, operator, value = parsed
        if not key:
            raise BadRequest(f"unable to parse requirement: {requirement!r}")
        if operator == "!=":
            tests.append(lambda obj, k=key, v=value: _labels(obj).get(k) != v)
        else:
            tests.append(lambda obj, k=key, v=value: _labels(obj).get(k) == v)
    return tests


def _field_tests(selector: str) -> list[Matcher]:
    tests: list[Matcher] = []
    for requirement in filter(None, (part.strip() for part in selector.split(","))):
        parsed = _split_requirement(requirement)
        if parsed is None or parsed[0] not in _SELECTABLE_FIELDS:
            raise BadRequest(
                f'"{requirement}" is not a known field selector: only "metadata.name", "metadata.namespace"'
                ' (and for events "involvedObject.*", "reason", "type", "source", "reportingComponent")'
            )
        key, operator, value = parsed
        if operator == "!=":
            tests.append(lambda obj, k=key, v=value: _field(obj, k) != v)
        else:
            tests.append(lambda obj, k=key, v=value: _field(obj, k) == v)
    return tests


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}
