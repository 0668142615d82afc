"""JSON merge patch (RFC 7386), the patch format the control-plane API accepts; and, for the core kinds
it stores (Secret, ConfigMap, ServiceAccount), kubectl's strategic merge patch, which means the same
there except for a ServiceAccount's lists, merged item by item by their `name`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from modelplane.local.api.errors import BadRequest

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


# The lists a strategic merge patch merges item by item, by kind: the field and its items' merge key
# (Kubernetes' patchMergeKey).
KEYED_LISTS = {"ServiceAccount": {"secrets": "name", "imagePullSecrets": "name"}}
_ORDER = "$setElementOrder/"


def strategic_patch(patch: dict[str, Any], kind: str) -> tuple[dict[str, Any], Callable[[dict], dict]]:
    """A strategic merge patch of a `kind`: the merge patch it holds (without its directives), and the
    change it makes to a resource. A keyed list merges by its key (an item with `$patch: delete` is
    removed, `$setElementOrder/<list>` orders the list); every other directive is refused."""
    patch = dict(patch)
    lists = KEYED_LISTS.get(kind, {})
    orders = {key[len(_ORDER) :]: patch.pop(key) for key in list(patch) if key.startswith(_ORDER)}
    merged_items = {field: patch.pop(field) for field in lists if isinstance(patch.get(field), list)}
    unknown = set(orders) - set(lists)
    if unknown:
        raise BadRequest(
            f"the strategic merge patch directive {_ORDER}{sorted(unknown)[0]!r} is not supported"
        )
    plain = plain_patch(patch)

    def change(current: dict) -> dict:
        result = merge_patch(current, plain)
        for field, key in lists.items():
            if field in merged_items or field in orders:
                items = _merged_list(field, key, current.get(field) or [], merged_items.get(field, []))
                result[field] = _ordered(items, key, orders.get(field))
        return result

    return plain, change


def _merged_list(field: str, key: str, current: list, patch: list) -> list[dict]:
    merged = {item[key]: item for item in current if isinstance(item, dict) and key in item}
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise BadRequest(f"{field}: an item of a strategic merge patch needs its {key!r}")
        directive = item.get("$patch")
        if directive == "delete":
            merged.pop(item[key], None)
        elif directive is not None:
            raise BadRequest(
                f"{field}: the strategic merge patch directive $patch: {directive!r} is not supported"
            )
        else:
            merged[item[key]] = merge_patch(merged.get(item[key]), plain_patch(item))
    return list(merged.values())


def _ordered(items: list[dict], key: str, order: Any) -> list[dict]:
    """The items in `$setElementOrder`'s order, those it does not name after them."""
    if not isinstance(order, list):
        return items
    named = [entry.get(key) for entry in order if isinstance(entry, dict)]
    rank = {name: index for index, name in enumerate(named)}
    return sorted(items, key=lambda item: rank.get(item[key], len(rank)))


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
