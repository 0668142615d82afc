"""Object metadata as Kubernetes manages it: names, identities, timestamps, and which fields
the server owns (a client's values for those are replaced, never trusted)."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from modelplane.local.api.errors import BadRequest, Invalid, invalid_cause

# DNS-1123: what Kubernetes accepts as an object name (subdomain) and a namespace (label).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The name in a label or annotation key, and a label's value.
_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
MAX_ANNOTATION_BYTES = 256 * 1024

# Set by the server on create and carried over unchanged by every update.
SERVER_OWNED = ("uid", "creationTimestamp", "generation", "resourceVersion")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generated_name(prefix: str) -> str:
    """`metadata.generateName` + five random characters, as Kubernetes does."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(5))


def check_name(name: Any, what: str, details: dict[str, Any] | None = None) -> str:
    """The name if it is a valid DNS-1123 subdomain; otherwise Invalid with Kubernetes' wording (and, with
    `details`, the object's identity and the field, for a client to place the error)."""
    if not isinstance(name, str) or not name:
        raise invalid_field(
            what, "metadata.name", "Required value: name or generateName is required", details
        )
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise invalid_field(
            what,
            "metadata.name",
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            details,
        )
    return name


def check_namespace(namespace: Any, what: str, details: dict[str, Any] | None = None) -> str:
    if not isinstance(namespace, str) or not namespace:
        raise invalid_field(what, "metadata.namespace", "Required value", details)
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise invalid_field(
            what,
            "metadata.namespace",
            f'Invalid value: "{namespace}": a lowercase RFC 1123 label must consist of lower case '
            "alphanumeric characters or '-', and must start and end with an alphanumeric character",
            details,
        )
    return namespace


def check_labels_and_annotations(metadata: dict[str, Any], what: str, details: dict[str, Any] | None) -> None:
    """Labels and annotations as Kubernetes takes them: maps of strings, keys that are qualified names,
    label values of at most 63 characters of a name's alphabet, annotations of at most 256 KiB in all."""
    for field in ("labels", "annotations"):
        entries = metadata.get(field)
        if entries is None:
            continue
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise BadRequest(f"{what}: metadata.{field} must map strings to strings")
        for key in entries:
            problem = qualified_name_problem(key)
            if problem:
                raise invalid_field(what, f"metadata.{field}", f'Invalid value: "{key}": {problem}', details)
    for value in (metadata.get("labels") or {}).values():
        problem = label_value_problem(value)
        if problem:
            raise invalid_field(what, "metadata.labels", f'Invalid value: "{value}": {problem}', details)
    annotations = metadata.get("annotations") or {}
    size = sum(len(key) + len(value) for key, value in annotations.items())
    if size > MAX_ANNOTATION_BYTES:
        message = f"Too long: must have at most {MAX_ANNOTATION_BYTES} bytes"
        raise invalid_field(what, "metadata.annotations", message, details)


def check_owner_references(metadata: dict[str, Any], what: str, details: dict[str, Any] | None) -> None:
    """Owner references as Kubernetes takes them: each with an apiVersion, a kind, a name and the uid
    its owner is known by (what the garbage collector matches), at most one of them the controller."""
    references = metadata.get("ownerReferences")
    if references is None:
        return
    if not isinstance(references, list) or not all(isinstance(ref, dict) for ref in references):
        raise BadRequest(f"{what}: metadata.ownerReferences must be a list of objects")
    controllers = []
    for ref in references:
        for field, called in (("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")):
            if not ref.get(field):
                message = f'Invalid value: "": {called} must not be empty'
                raise invalid_field(what, f"metadata.ownerReferences.{field}", message, details)
        if ref.get("controller") is True:
            controllers.append(f"{ref['kind']}/{ref['name']}")
    if len(controllers) > 1:
        message = (
            'Only one reference can have Controller set to true. Found "true" in references for '
            f"{controllers[0]} and {controllers[1]}"
        )
        raise invalid_field(what, "metadata.ownerReferences", f"Invalid value: {message}", details)


def qualified_name_problem(key: str) -> str | None:
    """Why `key` is not a label or annotation key (`[prefix/]name`), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "a qualified name's prefix must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _NAME_PART.match(name):
        return (
            "a qualified name must be at most 63 characters of alphanumerics, '-', '_' or '.', starting "
            "and ending with an alphanumeric character (with an optional DNS subdomain prefix and '/')"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why `value` is not a label value (empty, or a name part), or None."""
    if value and (len(value) > 63 or not _NAME_PART.match(value)):
        return (
            "a valid label must be an empty string or at most 63 characters of alphanumerics, '-', '_' "
            "or '.', starting and ending with an alphanumeric character"
        )
    return None


def invalid_field(what: str, field: str, message: str, details: dict[str, Any] | None) -> Invalid:
    causes = [invalid_cause(field, message)]
    return Invalid(f"{what}: {field}: {message}", {**details, "causes": causes} if details else None)


def metadata_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata mapping, created if absent; Invalid if it is not a mapping."""
    metadata = obj.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise Invalid("metadata: Invalid value: must be an object")
    return metadata
