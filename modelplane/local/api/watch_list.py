"""Kubernetes' streaming list (client-go's `WatchListClient`): a watch asked for with
`sendInitialEvents=true&resourceVersionMatch=NotOlderThan` starts with an ADDED event for each object
there is, then a BOOKMARK annotated `k8s.io/initial-events-end: "true"` at the resourceVersion of that
state, then every change after it. An informer that gets no such bookmark waits for one (client-go for
minutes, until its watch times out, before it lists instead). `sendInitialEvents=false` sends no initial
events: the watch starts at the `resourceVersion` given, or now.

The query is checked as Kubernetes' `validateWatchOptions` checks it (422 `Invalid`).
"""

from __future__ import annotations

from typing import Any

from modelplane.api.kinds import Kind
from modelplane.local.api.errors import BadRequest, Invalid

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
NOT_OLDER_THAN = "NotOlderThan"
MATCH = "resourceVersionMatch"
_BOOLEANS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def send_initial_events(query: dict[str, str], *, watch: bool) -> bool | None:
    """What a list or watch asks with `sendInitialEvents`: None when it does not ask (a plain watch)."""
    value = query.get("sendInitialEvents")
    match = query.get("resourceVersionMatch", "")
    if not watch:
        if value is not None:
            raise _invalid([_forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")])
        return None
    causes = []
    if value is not None and match != NOT_OLDER_THAN:
        causes.append(_forbidden(MATCH, f"sendInitialEvents requires setting {MATCH} to {NOT_OLDER_THAN}"))
    if match and value is None:
        causes.append(
            _forbidden(MATCH, f"{MATCH} is forbidden for watch unless sendInitialEvents is provided")
        )
    if match and match != NOT_OLDER_THAN:
        unsupported = f'Unsupported value: "{match}": supported values: "{NOT_OLDER_THAN}"'
        causes.append({"field": MATCH, "message": unsupported, "reason": "FieldValueNotSupported"})
    if causes:
        raise _invalid(causes)
    if value is None:
        return None
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise BadRequest(f'sendInitialEvents: invalid value "{value}": must be true or false') from None


def initial_events_end(kind: Kind, resource_version: int | str) -> dict[str, Any]:
    """The bookmark that ends a streaming list's initial events."""
    metadata = {"resourceVersion": str(resource_version), "annotations": {INITIAL_EVENTS_END: "true"}}
    return {
        "type": "BOOKMARK",
        "object": {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata},
    }


def _forbidden(field: str, detail: str) -> dict[str, str]:
    return {"field": field, "message": f"Forbidden: {detail}", "reason": "FieldValueForbidden"}


def _invalid(causes: list[dict[str, str]]) -> Invalid:
    """Kubernetes' refusal of list options: `ListOptions.meta.k8s.io "" is invalid: ...`."""
    said = [f"{cause['field']}: {cause['message']}" for cause in causes]
    listed = said[0] if len(said) == 1 else "[" + ", ".join(said) + "]"
    details = {"group": "meta.k8s.io", "kind": "ListOptions", "causes": causes}
    return Invalid(f'ListOptions.meta.k8s.io "" is invalid: {listed}', details)
