"""MLServer's content types (its codecs), as the sklearn, xgboost and lightgbm runtimes read a V2 request.

A request's `parameters.content_type` says how the whole request is read: `pd` (its inputs as the
columns of a table), `np` (its first input as an array) or `str` (its first input as a list of strings).
An input's own `parameters.content_type` says how that input is read: `np`, `str`, `base64` (each element
base64-decoded to bytes) or `datetime` (each element an ISO 8601 string, read as a `datetime`). As in
MLServer, an input's own content type is read first, and the request's then takes the decoded inputs:
the first of them, or all as the columns of a table. A model-settings.json gives defaults for both
(`parameters.content_type`, and each of `inputs`' `parameters.content_type`).

A content type without a codec (a made-up one, or `pd` on an input) is ignored, as MLServer ignores it:
the request or input is read as if it had none, by its datatype. The model's log says so, once per
content type.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.v2 import InferInput, InferOutput, InferRequest, output_from_array

logger = logging.getLogger(__name__)

REQUEST_CONTENT_TYPES = ("np", "pd", "str")
INPUT_CONTENT_TYPES = ("np", "str", "base64", "datetime")
# Distinct unknown content types logged per model; past them one line says the rest are not (a client
# that makes one up per request would otherwise grow the log and the memory without bound).
LOGGED_UNKNOWN_CONTENT_TYPES = 32


class UnknownContentTypes:
    """The content types a model was sent and has no codec for: each is logged once, as ignored."""

    def __init__(self, model: Any):
        self._model = model
        self._logged: set[str] = set()

    def ignore(self, content_type: str, where: str) -> None:
        """`where`: whose content type it was ("the request", "input 'x'")."""
        if content_type in self._logged or len(self._logged) > LOGGED_UNKNOWN_CONTENT_TYPES:
            return
        self._logged.add(content_type)
        if len(self._logged) > LOGGED_UNKNOWN_CONTENT_TYPES:
            logger.warning(
                "model %s: more unknown content types are ignored; they are no longer logged",
                self._model.name,
            )
            return
        known = REQUEST_CONTENT_TYPES if where == REQUEST else INPUT_CONTENT_TYPES
        logger.warning(
            "model %s: content_type %s of %s is ignored: %s; it is read by its datatype, as MLServer "
            "reads a content type it has no codec for",
            self._model.name,
            _shown(content_type),
            where,
            _why_unknown(content_type, where, known),
        )


REQUEST = "the request"


def decode_request(
    request: InferRequest,
    default_content_type: str | None = None,
    input_content_types: Mapping[str, str] | None = None,
    unknown: UnknownContentTypes | None = None,
) -> Any:
    """The model input of a V2 request: a table (`pd`), else its first input, read by its own content
    type (else the request's `str`, else as an array). The request's own content types win over the
    defaults; `unknown` logs those without a codec, which are ignored."""
    content_type = request.content_type or default_content_type
    if content_type not in (None, *REQUEST_CONTENT_TYPES):
        _ignore(unknown, content_type, REQUEST)
        content_type = None
    defaults = input_content_types or {}
    if content_type == "pd":
        decoded = {}
        for tensor in request.inputs:
            own = input_content_type(tensor, defaults, unknown)
            if own is not None and own != "np":
                decoded[tensor.name] = decode_input(tensor, own)
        return request.as_dataframe(decoded)
    first = request.inputs[0]
    own = input_content_type(first, defaults, unknown)
    if own is not None:
        return decode_input(first, own)
    if content_type == "str":
        return decode_input(first, "str")
    return first.as_numpy()


def input_content_type(
    tensor: InferInput, defaults: Mapping[str, str], unknown: UnknownContentTypes | None = None
) -> str | None:
    """An input's content type: its own, else the one model-settings.json gives it; None for one
    without a codec (ignored, and logged by `unknown`)."""
    content_type = (tensor.parameters or {}).get("content_type") or defaults.get(tensor.name)
    if content_type is None or content_type in INPUT_CONTENT_TYPES:
        return content_type
    _ignore(unknown, content_type, f"input {tensor.name!r}")
    return None


def _ignore(unknown: UnknownContentTypes | None, content_type: object, where: str) -> None:
    if unknown is not None:
        unknown.ignore(content_type if isinstance(content_type, str) else _shown(content_type), where)


def _why_unknown(content_type: str, where: str, known: tuple[str, ...]) -> str:
    if where != REQUEST and content_type in REQUEST_CONTENT_TYPES:
        return f"{_shown(content_type)} is a request's content type (its inputs as the columns of a table), not an input's"
    listed = ", ".join(f'"{name}"' for name in known)
    return f"there is no codec for it ({'a request' if where == REQUEST else 'an input'} takes {listed})"


def decode_input(tensor: InferInput, content_type: str) -> Any:
    """One input as its content type reads it: an array (`np`), or a list of its elements as strings,
    bytes or datetimes."""
    if content_type == "np":
        return tensor.as_numpy()
    if tensor.datatype != "BYTES":
        raise InvalidInput(
            f'input {tensor.name!r}: content_type "{content_type}" needs a BYTES input, got {tensor.datatype}'
        )
    elements = [bytes(value) for value in tensor.as_numpy().ravel()]
    if content_type == "base64":
        return [_base64_decoded(value) for value in elements]
    try:
        strings = [value.decode("utf-8") for value in elements]
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"input {tensor.name!r} is not UTF-8 text: {exc}") from None
    if content_type == "str":
        return strings
    try:
        return [datetime.fromisoformat(value) for value in strings]
    except ValueError as exc:
        raise InvalidInput(
            f'input {tensor.name!r}: content_type "datetime" takes ISO 8601 dates: {exc}'
        ) from None


def numpy_output(name: str, result: Any) -> InferOutput:
    """An answer as MLServer's NumpyCodec encodes it: a one-dimensional result as a column (`[N]` is
    `[N, 1]`), tagged with its content type."""
    array = np.asarray(result)
    output = output_from_array(name, array.reshape(-1, 1) if array.ndim == 1 else array)
    output.parameters = {"content_type": "np"}
    return output


def _base64_decoded(value: bytes) -> bytes:
    # As MLServer's Base64Codec: an element that is not base64 is taken as the bytes it is.
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        return value


def _shown(value: object) -> str:
    return json.dumps(value)[:40]
