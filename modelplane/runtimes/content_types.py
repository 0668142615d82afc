"""MLServer's content types (its codecs), as the sklearn, xgboost and lightgbm runtimes read a V2 request.

A request's `parameters.content_type` says how the whole request is read: `pd` (its inputs as the
columns of a table), `np` (its first input as an array) or `str` (its first input as a list of strings).
An input's own `parameters.content_type` says how that input is read: `np`, `str`, `base64` (each element
base64-decoded to bytes) or `datetime` (each element an ISO 8601 string, read as a `datetime`). As in
MLServer, an input's own content type is read first, and the request's then takes the decoded inputs:
the first of them, or all as the columns of a table. A model-settings.json gives defaults for both
(`parameters.content_type`, and each of `inputs`' `parameters.content_type`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.v2 import InferInput, InferOutput, InferRequest, output_from_array

REQUEST_CONTENT_TYPES = ("np", "pd", "str")
INPUT_CONTENT_TYPES = ("np", "str", "base64", "datetime")


def decode_request(
    request: InferRequest,
    default_content_type: str | None = None,
    input_content_types: Mapping[str, str] | None = None,
) -> Any:
    """The model input of a V2 request: a table (`pd`), else its first input, read by its own content
    type (else the request's `str`, else as an array). The request's own content types win over the
    defaults."""
    content_type = request.content_type or default_content_type
    if content_type not in (None, *REQUEST_CONTENT_TYPES):
        raise InvalidInput(
            'the request\'s content_type must be "pd" (its inputs as the columns of a table), "np" '
            '(its first input as an array) or "str" (its first input as a list of strings), got '
            f"{_shown(content_type)}"
        )
    defaults = input_content_types or {}
    if content_type == "pd":
        decoded = {}
        for tensor in request.inputs:
            own = input_content_type(tensor, defaults)
            if own is not None and own != "np":
                decoded[tensor.name] = decode_input(tensor, own)
        return request.as_dataframe(decoded)
    first = request.inputs[0]
    own = input_content_type(first, defaults)
    if own is not None:
        return decode_input(first, own)
    if content_type == "str":
        return decode_input(first, "str")
    return first.as_numpy()


def input_content_type(tensor: InferInput, defaults: Mapping[str, str]) -> str | None:
    """An input's content type: its own, else the one model-settings.json gives it; checked."""
    content_type = (tensor.parameters or {}).get("content_type") or defaults.get(tensor.name)
    if content_type is None or content_type in INPUT_CONTENT_TYPES:
        return content_type
    if content_type == "pd":
        raise InvalidInput(
            f'input {tensor.name!r}: content_type "pd" is the request\'s (its inputs as the columns of '
            "a table), not an input's: give it in the request's parameters"
        )
    raise InvalidInput(
        f'input {tensor.name!r}: content_type must be "np", "str", "base64" or "datetime", got '
        f"{_shown(content_type)}"
    )


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
