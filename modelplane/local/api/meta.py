"""Object metadata as Kubernetes manages it: names, identities, timestamps, and which fields
the server owns (a client's values for those are replaced, never trusted)."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from modelplane.local.api.errors import Invalid

# DNS-1123: what Kubernetes accepts as an object name (subdomain) and a namespace (label).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

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
        raise _invalid(what, "metadata.name", "Required value: name or generateName is required", details)
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise _invalid(
            what,
            "metadata.name",
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            details,
        )
    return name


def check_namespace(namespace: Any, what: str, details: dict[str, Any] | None = None) -> str:
    if not isinstance(namespace, str) or not namespace:
        raise _invalid(what, "metadata.namespace", "Required value", details)
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise _invalid(
            what,
            "metadata.namespace",
            f'Invalid value: "{namespace}": a lowercase RFC 1123 label must consist of lower case '
            "alphanumeric characters or '-', and must start and end with an alphanumeric character",
            details,
        )
    return namespace


def _invalid(what: str, field: str, message: str, details: dict[str, Any] | None) -> Invalid:
    causes = [{"field": field, "message": message, "reason": "FieldValueInvalid"}]
    return Invalid(f"{what}: {field}: {message}", {**details, "causes": causes} if details else None)


def metadata_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata mapping, created if absent; Invalid if it is not a mapping."""
    metadata = obj.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise Invalid("metadata: Invalid value: must be an object")
    return metadata
