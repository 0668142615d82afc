"""The discovery documents under `/apis` (and `/api` for the core group's Event): which groups,
versions and resources are served."""

from __future__ import annotations

import platform
import sys
from typing import Any

from modelplane.api.kinds import KINDS, Kind
from modelplane.local.api import services
from modelplane.local.api.paths import served_versions, short_names

SERVED_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]

# The reviews a client asks about itself (access_reviews.py): served by create alone, stored nowhere.
REVIEWS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("authentication.k8s.io", "v1"): [("selfsubjectreviews", "SelfSubjectReview")],
    ("authorization.k8s.io", "v1"): [
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
        ("selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    ],
}


# The Kubernetes API whose conventions the server follows (and that kubectl is tested against), for
# `GET /version`; `gitVersion` says that it is modelplane's.
KUBERNETES_MINOR = "32"
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}  # the names Go gives the machines


def version_info() -> dict[str, Any]:
    """`GET /version`, as the Kubernetes API server answers it (`kubectl version` prints it)."""
    from modelplane import __version__

    machine = platform.machine().lower()
    return {
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": f"v1.{KUBERNETES_MINOR}.0-modelplane.{__version__}",
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "modelplane",
        "platform": f"{sys.platform}/{_GO_ARCH.get(machine, machine)}",
    }


def group_list() -> dict[str, Any]:
    groups = sorted({k.group for k in KINDS if k.group} | {group for group, _ in REVIEWS})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group(g) for g in groups]}


def _versions(group: str) -> list[str]:
    return served_versions(group) or sorted((v for g, v in REVIEWS if g == group), reverse=True)


def api_group(group: str) -> dict[str, Any] | None:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in _versions(group)]
    if not versions:
        return None
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    }


def core_versions() -> dict[str, Any]:
    """`GET /api`: the versions of the core group."""
    return {"kind": "APIVersions", "versions": served_versions("")}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    kinds = [k for k in KINDS if k.group == group and k.version == version]
    reviews = REVIEWS.get((group, version), [])
    if not kinds and not reviews:
        return None
    resources: list[dict[str, Any]] = [
        {"name": name, "singularName": "", "namespaced": False, "kind": kind, "verbs": ["create"]}
        for name, kind in reviews
    ]
    for kind in kinds:
        resources.append(_resource(kind))
        if kind.has_status_subresource:
            resources.append(_status_subresource(kind))
    if (group, version) == ("", "v1"):
        resources.append(services.DISCOVERY)  # none are here: listed empty
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _status_subresource(kind: Kind) -> dict[str, Any]:
    return {
        "name": f"{kind.plural}/status",
        "singularName": "",
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": STATUS_VERBS,
    }


def _resource(kind: Kind) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "name": kind.plural,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": SERVED_VERBS,
    }
    if short_names(kind):
        resource["shortNames"] = short_names(kind)
    if kind.categories:
        resource["categories"] = list(kind.categories)
    return resource
