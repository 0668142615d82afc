"""The V2 REST wire format: JSON bodies and the binary tensor extension."""

from __future__ import annotations

import json

import numpy as np
import orjson

from modelplane.protocol import lean_json
from modelplane.protocol.datatypes import BINARY_ONLY_DATATYPES, array_to_raw, as_datatype
from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.v2 import (
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
    request_from_dict,
    select_outputs,
    wants_binary_outputs,
)

JSON_LENGTH_HEADER = "inference-header-content-length"
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def decode_request(body: bytes, json_length: int | None, model_name: str) -> InferRequest:
    """Decode an /infer body; `json_length` is the inference-header-content-length, if sent."""
    if not body:
        raise InvalidInput("the request body is empty")
    if json_length is None:
        header, binary = body, None
    else:
        if json_length < 0 or json_length > len(body):
            raise InvalidInput(f"{JSON_LENGTH_HEADER} is {json_length} but the body has {len(body)} bytes")
        view = memoryview(body)
        header, binary = view[:json_length], view[json_length:]
    return request_from_dict(_load_json(header), model_name, binary)


def _load_json(header: bytes | memoryview) -> object:
    """The JSON document, read as KServe's server reads it: also with the `NaN`, `Infinity` and
    `-Infinity` that Python's `json.dumps` writes (tritonclient's JSON requests, `requests`' `json=`),
    and after a UTF-8 byte order mark. orjson reads all else; Python's json only what it refused. A large
    body's flat arrays of numbers are read lean (`lean_json`)."""
    document = lean_json.load_v2(header)
    if document is not None:
        return document
    try:
        return orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        refused = exc
    try:
        document = json.loads(bytes(header))
        json.dumps(document, ensure_ascii=False).encode()  # refuses a lone surrogate, as orjson does
    except (ValueError, RecursionError):  # nested too deep: refused by orjson for the same reason
        raise InvalidInput(f"the request body is not valid JSON: {refused}") from None
    return document


def parse_json_length(value: bytes | str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{JSON_LENGTH_HEADER} must be an integer, got {value!r}") from None


def _json_data(output: InferOutput):
    array = output._array
    if array is None:
        return output._data
    if output.datatype == "BYTES" or array.dtype.kind in "OSU":
        try:
            return output.data
        except UnicodeDecodeError:
            raise InvalidInput(
                f"output {output.name!r} holds bytes that are not UTF-8 text, which JSON cannot carry; "
                "ask for it with binary_data: true"
            ) from None
    if output.datatype in BINARY_ONLY_DATATYPES:
        raise InvalidInput(
            f"output {output.name!r} is {output.datatype}, which cannot be sent as JSON; "
            "ask for it with binary_data: true"
        )
    array = as_datatype(array, output.datatype)
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return array.reshape(-1)


def _output_array(output: InferOutput) -> np.ndarray:
    return output.as_numpy() if output._array is None else output._array


def encode_response(response: InferResponse, request: InferRequest | None) -> tuple[bytes, int | None]:
    """The body of an /infer response, and its JSON length when binary outputs follow it."""
    return _joined(*response_document(response, request))


def response_document(response: InferResponse, request: InferRequest | None) -> tuple[dict, list[bytes]]:
    """The JSON document of an /infer response (its data numpy arrays where they were), and the binary
    outputs that follow it."""
    all_binary = wants_binary_outputs(request)
    described = []
    raw_parts: list[bytes] = []
    for output, binary_flag in select_outputs(response, request):
        binary = all_binary if binary_flag is None else binary_flag
        parameters = dict(output.parameters) if output.parameters else None
        if parameters:
            parameters.pop("binary_data", None)
        if binary:
            raw = array_to_raw(_output_array(output), output.datatype)
            raw_parts.append(raw)
            parameters = {**(parameters or {}), "binary_data_size": len(raw)}
            described.append(
                {
                    "name": output.name,
                    "shape": output.shape,
                    "datatype": output.datatype,
                    "parameters": parameters,
                }
            )
        else:
            described.append(
                {
                    "name": output.name,
                    "shape": output.shape,
                    "datatype": output.datatype,
                    "parameters": parameters or None,
                    "data": _json_data(output),
                }
            )
    document = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "parameters": response.parameters,
        "outputs": described,
    }
    return document, raw_parts


def _joined(document: dict, raw_parts: list[bytes]) -> tuple[bytes, int | None]:
    """A body: the document, then the binary tensors; and the document's length if any follow."""
    header = orjson.dumps(document, option=_DUMPS_OPTIONS)
    if not raw_parts:
        return header, None
    return header + b"".join(raw_parts), len(header)


def rest_message(document: dict, raw_parts: list[bytes]) -> tuple[dict | bytes, int | None]:
    """What KServe's `to_rest` gives: the document as a dict of plain lists (for `json=`) when no binary
    tensor follows it, else the body and its JSON length (the inference-header-content-length); without
    the parameters that are None, as KServe's."""
    if document.get("parameters") is None:
        document.pop("parameters", None)
    for tensor in document.get("inputs") or document.get("outputs") or ():
        if tensor.get("parameters") is None:
            tensor.pop("parameters", None)
        if not raw_parts and isinstance(tensor.get("data"), np.ndarray):
            tensor["data"] = tensor["data"].tolist()
    return _joined(document, raw_parts) if raw_parts else (document, None)


def decode_response(body: bytes, json_length: int | None = None) -> InferResponse:
    """Decode an /infer response (used by transformers calling their predictor)."""
    view = memoryview(body)
    header = view if json_length is None else view[:json_length]
    binary = None if json_length is None else view[json_length:]
    return response_from_dict(_load_json(header), binary)


def response_from_dict(document: object, binary: memoryview | None = None) -> InferResponse:
    """An InferResponse from a decoded JSON response (plus the binary section, if any)."""
    from modelplane.protocol.v2 import decode_outputs

    if not isinstance(document, dict):
        raise InvalidInput("the response body must be a JSON object")
    outputs = decode_outputs(document.get("outputs"), binary, "response")
    return InferResponse(
        document.get("id"),
        document.get("model_name", ""),
        outputs,
        model_version=document.get("model_version"),
        parameters=document.get("parameters"),
    )


def encode_request(request: InferRequest) -> tuple[bytes, int | None]:
    """The body of an /infer request, and its JSON length when binary tensors follow it.

    Tensors travel as JSON, except FP16 and BF16, which only the binary extension can carry.
    """
    return _joined(*request_document(request))


def request_document(request: InferRequest, as_to_rest: bool = False) -> tuple[dict, list[bytes]]:
    """The JSON document of an /infer request, and the binary tensors that follow it: FP16 and BF16; and,
    `as_to_rest` (as KServe's `InferRequest.to_rest` sends a request, not as a transformer forwards it),
    those whose `binary_data` parameter asks for it (`set_data_from_numpy`'s) or all of a request read
    from raw gRPC contents, and the requested outputs with all their parameters."""
    described = []
    raw_parts: list[bytes] = []
    for tensor in request.inputs:
        entry = {"name": tensor.name, "shape": tensor.shape, "datatype": tensor.datatype}
        parameters = dict(tensor.parameters or {})
        parameters.pop("binary_data_size", None)
        binary = tensor.datatype in BINARY_ONLY_DATATYPES
        if as_to_rest:
            binary = bool(parameters.pop("binary_data", None)) or request._raw_inputs or binary
        if binary:
            raw = array_to_raw(_output_array(tensor), tensor.datatype)
            raw_parts.append(raw)
            parameters["binary_data_size"] = len(raw)
        else:
            entry["data"] = _json_data(tensor)
        if parameters:
            entry["parameters"] = parameters
        described.append(entry)
    document: dict = {"inputs": described}
    if request.id:
        document["id"] = request.id
    if request.parameters:
        document["parameters"] = request.parameters
    if request.request_outputs:
        document["outputs"] = [
            _requested(output) if as_to_rest else _forwarded_output(output)
            for output in request.request_outputs
        ]
    return document, raw_parts


def _requested(output: RequestedOutput) -> dict:
    return {"name": output.name, **({"parameters": output.parameters} if output.parameters else {})}


def _forwarded_output(output: RequestedOutput) -> dict:
    """A requested output as a transformer asks its predictor for it: without `classification`, which
    the server answering the client applies, once, to the answer it sends (the transformer's
    `postprocess` gets the predictor's values, not its classes)."""
    parameters = {k: v for k, v in (output.parameters or {}).items() if k != "classification"}
    return {"name": output.name, **({"parameters": parameters} if parameters else {})}
