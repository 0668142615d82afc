"""The 63-character limits the cluster holds the names in a resource's objects to: label values (such
as `app: isvc.<isvc>-predictor`), the names of Services (Kubernetes' and Knative's), and each DNS
label of a route's hosts (`<isvc>-predictor-<namespace>`, and Knative's tagged `latest-<ksvc>`).

The objects are made from the resource's name (and namespace), so a name too long makes objects the
API server refuses one by one (or, for a host, routes no Gateway or DNS can serve); KServe gives up on
such a resource as it reconciles it. Checked once for all, the resource is refused with the name at
fault and how much shorter it must be.

    too_long(objects)   # None, or why the longest name over the limit is refused
"""

from __future__ import annotations

from collections.abc import Iterator

LIMIT = 63
_KNATIVE = "serving.knative.dev/v1"


def too_long(objects: list[dict]) -> str | None:
    """Why the longest name over the limit is refused (it says by how much the name must shrink)."""
    named = [(len(value), what, value) for obj in objects for what, value in _limited_names(obj)]
    length, what, value = max(named, default=(0, "", ""))
    if length <= LIMIT:
        return None
    over = length - LIMIT
    return (
        f"the {what} {value!r} would be {length} characters long, over the limit of {LIMIT}: "
        f"the name must be {over} character{'s' if over > 1 else ''} shorter"
    )


def _limited_names(obj: dict) -> Iterator[tuple[str, str]]:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    kind, knative = obj.get("kind"), obj.get("apiVersion") == _KNATIVE
    if kind == "Service":
        yield ("Knative Service name" if knative else "Service name"), metadata["name"]
    template = (spec.get("template") or {}).get("metadata") or {}
    for labels in (metadata.get("labels"), template.get("labels")):
        for key, value in (labels or {}).items():
            yield f"label {key}:", str(value)
    hosts = list(spec.get("hostnames") or []) if kind == "HTTPRoute" else []
    if kind == "Ingress":
        hosts += [rule["host"] for rule in spec.get("rules") or [] if rule.get("host")]
    for hostname in hosts:
        yield "host label", hostname.split(".")[0]
    if knative:
        for target in spec.get("traffic") or []:
            if target.get("tag"):
                yield "tagged host label", f"{target['tag']}-{metadata['name']}"
