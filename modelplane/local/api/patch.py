"""JSON merge patch (RFC 7386), the patch format the control-plane API accepts (and, for a
Secret, kubectl's strategic merge patch without directives, which means the same there)."""

from __future__ import annotations

import copy
from typing import Any

from modelplane.local.api.errors import BadRequest

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def plain_patch(patch: dict[str, Any]) -> dict[str, Any]:
    """A strategic merge patch that is also a merge patch: one without `$` directives (`$patch`,
    `$retainKeys`, `$setElementOrder/...`, `$deleteFromPrimitiveList/...`), which are refused."""
    directive = _first_directive(patch)
    if directive is not None:
        raise BadRequest(
            f"the strategic merge patch directive {directive!r} is not supported: use a merge patch"
        )
    return patch


def _first_directive(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).startswith("$"):
                return str(key)
            found = _first_directive(item)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _first_directive(item)
            if found is not None:
                return found
    return None


def merge_patch(target: Any, patch: Any) -> Any:
    """`target` with `patch` merged in: objects merge key by key, `null` removes a key, and any
    other value (lists included) replaces what was there. Neither argument is modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
