"""What a client may do, as Kubernetes' review APIs answer it: `kubectl auth can-i` (a
SelfSubjectAccessReview), `kubectl auth can-i --list` (a SelfSubjectRulesReview) and `kubectl auth
whoami` (a SelfSubjectReview); tools that hide what their user may not do (k9s, dashboards) ask too.

The control-plane API has one level of access: a client that reaches it (with the bearer token,
where `modelplane up` asks for one) may do whatever the API serves, and nothing else. So a review
allows a verb on a resource when the API serves that verb there, as discovery lists it; a `*` asks
for every verb, or every resource, or every group, and is allowed only where all of them are.
"""

from __future__ import annotations

from typing import Any

from modelplane.api.kinds import KINDS, Kind
from modelplane.local.api import services
from modelplane.local.api.discovery import REVIEWS, SERVED_VERBS, STATUS_VERBS
from modelplane.local.api.errors import BadRequest

ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
RULES_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
SUBJECT_REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW_PATHS = (ACCESS_REVIEW_PATH, RULES_REVIEW_PATH, SUBJECT_REVIEW_PATH)

# Every verb Kubernetes authorizes on a resource: what `*` asks for.
_ALL_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
# The paths outside `/apis` that the API serves, all read with GET.
NON_RESOURCE_URLS = ("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/metrics",
                     "/openapi/*", "/version")  # fmt: skip


def review(path: str, body: dict[str, Any], token_required: bool) -> dict[str, Any]:
    """The answer to a review POSTed to `path` (one of REVIEW_PATHS)."""
    if path == SUBJECT_REVIEW_PATH:
        return _answer(body, "authentication.k8s.io/v1", {"userInfo": _user(token_required)})
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise BadRequest("a review needs a spec")
    if path == RULES_REVIEW_PATH:
        return _answer(body, "authorization.k8s.io/v1", _rules())
    return _answer(body, "authorization.k8s.io/v1", _decision(spec))


_REVIEWS = [(group, name) for (group, _), reviews in REVIEWS.items() for name, _ in reviews]


def _answer(body: dict[str, Any], api_version: str, status: dict[str, Any]) -> dict[str, Any]:
    answer = {key: value for key, value in body.items() if key != "status"}
    return {**answer, "apiVersion": api_version, "metadata": {"creationTimestamp": None}, "status": status}


def _user(token_required: bool) -> dict[str, Any]:
    if token_required:
        return {"username": "modelplane:token", "groups": ["system:authenticated"]}
    return {"username": "system:anonymous", "groups": ["system:unauthenticated"]}


def _decision(spec: dict[str, Any]) -> dict[str, Any]:
    resource = spec.get("resourceAttributes")
    if isinstance(resource, dict):
        reason = _resource_refusal(resource)
    else:
        other = spec.get("nonResourceAttributes")
        if not isinstance(other, dict):
            raise BadRequest("a SelfSubjectAccessReview needs resourceAttributes or nonResourceAttributes")
        reason = _non_resource_refusal(str(other.get("path") or ""), str(other.get("verb") or ""))
    if reason is None:
        return {"allowed": True, "reason": "the control-plane API lets whoever reaches it do all it serves"}
    return {"allowed": False, "reason": reason}


def _resource_refusal(attributes: dict[str, Any]) -> str | None:
    """Why the API would refuse the verb on the resource, or None when it serves it."""
    group, plural = str(attributes.get("group") or ""), str(attributes.get("resource") or "")
    subresource, verb = str(attributes.get("subresource") or ""), str(attributes.get("verb") or "")
    if (group, plural) in _REVIEWS:
        return None if verb == "create" and not subresource else f"the API serves only 'create' on {plural}"
    served = [
        (kind.plural, _verbs(kind, subresource))
        for kind in KINDS
        if group in ("*", kind.group) and plural in ("*", kind.plural)
    ]
    # Services stand in, read-only and empty, for the Kubernetes clients that look for some: asked of
    # by name only, so that `*` on `*` still says whether every verb of every real resource is served.
    if group in ("*", "") and plural == services.PLURAL:
        served.append((services.PLURAL, [] if subresource else services.DISCOVERY["verbs"]))
    if not served:
        return f"the API serves no resource {plural!r} in group {group!r}"
    for served_plural, verbs in served:
        for wanted in _ALL_VERBS if verb == "*" else (verb,):
            if wanted not in verbs:
                where = f"{served_plural}/{subresource}" if subresource else served_plural
                return f"the API does not serve {wanted!r} on {where}"
    return None


def _verbs(kind: Kind, subresource: str) -> list[str]:
    if not subresource:
        return SERVED_VERBS
    if subresource == "status" and kind.has_status_subresource:
        return STATUS_VERBS
    return []


def _non_resource_refusal(path: str, verb: str) -> str | None:
    if verb != "get":
        return f"the API serves its paths outside /apis to GET only, not to {verb!r}"
    for served in NON_RESOURCE_URLS:
        if path == served or (served.endswith("/*") and path.startswith(served[:-1])):
            return None
    return f"the API serves no path {path!r}"


def _rules() -> dict[str, Any]:
    rules = []
    for kind in KINDS:
        rules.append({"verbs": list(SERVED_VERBS), "apiGroups": [kind.group], "resources": [kind.plural]})
        if kind.has_status_subresource:
            rules.append(
                {
                    "verbs": list(STATUS_VERBS),
                    "apiGroups": [kind.group],
                    "resources": [f"{kind.plural}/status"],
                }
            )
    rules.append(
        {"verbs": list(services.DISCOVERY["verbs"]), "apiGroups": [""], "resources": [services.PLURAL]}
    )
    rules += [
        {"verbs": ["create"], "apiGroups": [group], "resources": [plural]} for group, plural in _REVIEWS
    ]
    return {
        "resourceRules": rules,
        "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": list(NON_RESOURCE_URLS)}],
        "incomplete": False,
    }
