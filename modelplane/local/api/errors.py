"""Errors of the control-plane API, each one a Kubernetes `Status` on the wire.

The store raises them and the API server turns them into responses, so a client sees the same
reason and code as it would from a Kubernetes API server (`NotFound` 404, `Conflict` 409, ...).
"""

from __future__ import annotations

from typing import Any

from modelplane.api.kinds import Kind


class ApiError(Exception):
    """A refused request; `code` is the HTTP status and `reason` Kubernetes' StatusReason."""

    code: int = 500
    reason: str = "InternalError"

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        # The request's warnings (unknown fields it named), sent with the refusal as Kubernetes sends them.
        self.warnings: list[str] = []

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    """The write named a resourceVersion that is no longer the stored one."""

    code = 409
    reason = "Conflict"


class Expired(ApiError):
    """A watch asked to resume from a resourceVersion older than the kept event history."""

    code = 410
    reason = "Expired"


class RequestEntityTooLarge(ApiError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(ApiError):
    """The object fails validation (the store's own checks or the admission hook)."""

    code = 422
    reason = "Invalid"


class ServiceUnavailable(ApiError):
    """The control plane cannot serve the request now (its store is locked by another process, or its
    disk is full)."""

    code = 503
    reason = "ServiceUnavailable"


_BY_REASON: dict[str, type[ApiError]] = {
    cls.reason: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        AlreadyExists,
        Conflict,
        Expired,
        RequestEntityTooLarge,
        UnsupportedMediaType,
        Invalid,
        ServiceUnavailable,
    )
}


def error_from_status(status: dict[str, Any], http_code: int) -> ApiError:
    """Rebuild the error a `Status` object describes (the client side of `to_status`)."""
    cls = _BY_REASON.get(str(status.get("reason", "")), ApiError)
    error = cls(str(status.get("message") or f"HTTP {http_code}"), status.get("details"))
    error.code = int(status.get("code") or http_code)
    return error


def not_found(kind: Kind, name: str) -> NotFound:
    return NotFound(f'{kind.crd_name} "{name}" not found', object_details(kind, name))


def already_exists(kind: Kind, name: str) -> AlreadyExists:
    return AlreadyExists(f'{kind.crd_name} "{name}" already exists', object_details(kind, name))


def conflict(kind: Kind, name: str) -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {kind.crd_name} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        object_details(kind, name),
    )


def precondition_failed(kind: Kind, name: str, field: str, wanted: object, actual: object) -> Conflict:
    """A delete whose precondition (`uid`, `resourceVersion`) the stored object does not meet."""
    what = {"uid": "UID", "resourceVersion": "ResourceVersion"}.get(field, field)
    return Conflict(
        f"Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {actual}",
        object_details(kind, name),
    )


def object_details(kind: Kind, name: str) -> dict[str, Any]:
    """The details of a refusal about an object (NotFound, AlreadyExists, Conflict): Kubernetes names
    its resource there, `inferenceservices`."""
    return {"name": name, "group": kind.group, "kind": kind.plural}


def invalid_details(kind: Kind, name: str) -> dict[str, Any]:
    """The details of an Invalid refusal: Kubernetes' NewInvalid names the kind there,
    `InferenceService` (kubectl prints `The InferenceService "iris" is invalid: ...`)."""
    return {"name": name, "group": kind.group, "kind": kind.kind}


# Kubernetes' field error types: how a message begins, and the reason its cause carries.
_CAUSE_REASONS = (
    ("Required value", "FieldValueRequired"),
    ("Unsupported value", "FieldValueNotSupported"),
    ("Duplicate value", "FieldValueDuplicate"),
    ("Forbidden", "FieldValueForbidden"),
    ("Too long", "FieldValueTooLong"),
    ("Too many", "FieldValueTooMany"),
    ("Not found", "FieldValueNotFound"),
    ("Internal error", "InternalError"),
)


def invalid_cause(field: str, message: str) -> dict[str, str]:
    """One of an Invalid refusal's `details.causes`, its reason read from how the message begins, as
    Kubernetes words each type of field error (`Required value`: FieldValueRequired)."""
    reason = next((r for start, r in _CAUSE_REASONS if message.startswith(start)), "FieldValueInvalid")
    return {"field": field, "message": message, "reason": reason}
