"""Errors that cross the wire: each knows its HTTP status and gRPC status code.

A fault the client caused is a 4xx; only a real failure inside a model or the server is a 5xx.
"""

from __future__ import annotations

import grpc


class ModelplaneError(Exception):
    """Base of every error that becomes an error response."""

    status_code: int = 500
    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def reason(self) -> str:
        """The message, by the name KServe's errors give it."""
        return self.message


class InvalidInput(ModelplaneError):
    """The request is malformed or does not fit the model."""

    status_code = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class ModelNotFound(ModelplaneError):
    status_code = 404
    grpc_code = grpc.StatusCode.NOT_FOUND

    def __init__(self, model_name: str | None = None, message: str | None = None):
        super().__init__(message or f"Model with name {model_name} does not exist.")
        self.name = model_name


class ModelNotReady(ModelplaneError):
    status_code = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, name: str, reason: str | None = None):
        message = f"Model with name {name} is not ready."
        if reason:
            message = f"{message} {reason}"
        super().__init__(message)
        self.name = name


class ServerNotReady(ModelplaneError):
    status_code = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE


class NotImplementedByModel(ModelplaneError):
    """The model does not implement the verb asked for (e.g. explain)."""

    status_code = 501
    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class UnsupportedProtocol(ModelplaneError):
    """A model refuses the protocol a request came by (KServe's error of the name)."""

    status_code = 501
    grpc_code = grpc.StatusCode.UNIMPLEMENTED

    def __init__(self, protocol_version: str | None = None):
        super().__init__(f"Unsupported protocol {protocol_version}.")


class UnsupportedMediaType(ModelplaneError):
    status_code = 415
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class PayloadTooLarge(ModelplaneError):
    status_code = 413
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class InferenceError(ModelplaneError):
    """The model failed on a request that was well-formed. KServe's arguments: `status` (a word such as
    "ABORTED") prefixes the message in brackets; `debug_details` is kept for the model's own use."""

    status_code = 500
    grpc_code = grpc.StatusCode.INTERNAL

    def __init__(self, reason: str, status: str | None = None, debug_details: str | None = None):
        super().__init__(reason if status is None else f"[{status}] {reason}")
        self.status = status
        self.debug_details = debug_details


class RequestTimedOut(ModelplaneError):
    """The request's own `timeout` parameter passed before the model answered."""

    status_code = 504
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class ModelStatusError(ModelplaneError):
    """A model answered with an HTTP status of its own choosing (a TorchServe handler's, say)."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code
        self.grpc_code = _GRPC_CODES.get(status_code) or (
            grpc.StatusCode.INVALID_ARGUMENT if 400 <= status_code < 500 else grpc.StatusCode.INTERNAL
        )


class UpstreamError(ModelStatusError):
    """A transformer's predictor answered with an error (its status is passed on, over gRPC as the code
    it stands for), or could not be reached (502)."""

    def __init__(self, message: str, status_code: int = 502):
        super().__init__(message, status_code)


_GRPC_CODES = {
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
    507: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
