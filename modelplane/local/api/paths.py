"""Where each kind lives in the control-plane API's URL space, and the words that name it.

The kinds themselves (group, version, plural, scope) come from `modelplane.api.kinds`.
"""

from __future__ import annotations

from modelplane.api.kinds import GROUP, KINDS, Kind
from modelplane.api.kinds import kind_named as _kind_named

# Short names the command line accepts beyond KServe's own (`isvc`, `ig`, `tm`).
_EXTRA_SHORT_NAMES = {"sr": "ServingRuntime", "csr": "ClusterServingRuntime"}

_BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
_BY_KIND = {k.kind: k for k in KINDS}


def collection_path(kind: Kind, namespace: str | None) -> str:
    """The list/create URL; for a namespaced kind, `namespace=None` means every namespace."""
    base = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    if kind.namespaced and namespace is not None:
        return f"{base}/namespaces/{namespace}/{kind.plural}"
    return f"{base}/{kind.plural}"


def object_path(kind: Kind, namespace: str, name: str) -> str:
    return f"{collection_path(kind, namespace if kind.namespaced else None)}/{name}"


def kind_at(group: str, version: str, plural: str) -> Kind | None:
    """The kind served at `/apis/{group}/{version}/.../{plural}`, if any."""
    return _BY_PATH.get((group, version, plural))


def kind_by_name(kind: str) -> Kind:
    """The entry for an exact kind name such as `InferenceService`; KeyError if not served."""
    return _BY_KIND[kind]


def resolve_kind(word: str) -> Kind | None:
    """The kind a command-line word means: kind, plural, singular or short name, any case,
    optionally qualified by the group (`isvc`, `InferenceServices`, `inferenceservice.serving.kserve.io`)."""
    word = word.lower()
    if word.endswith("." + GROUP):
        word = word[: -len(GROUP) - 1]
    if word in _EXTRA_SHORT_NAMES:
        return _BY_KIND[_EXTRA_SHORT_NAMES[word]]
    return _kind_named(word)


def short_names(kind: Kind) -> list[str]:
    """The short names discovery lists for a kind, so that kubectl knows them too: KServe's, and
    the ones the command line adds."""
    extra = [word for word, name in _EXTRA_SHORT_NAMES.items() if name == kind.kind]
    return [*kind.short_names, *extra]


def served_versions(group: str) -> list[str]:
    """The versions served for a group, the preferred (newest) first."""
    return sorted({k.version for k in KINDS if k.group == group}, reverse=True)


def qualified_singular(kind: Kind) -> str:
    """`inferenceservice.serving.kserve.io`, as kubectl names an object after apply or delete."""
    return f"{kind.singular}.{kind.group}" if kind.group else kind.singular
