"""V2 requests and responses to and from their gRPC messages."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelplane.protocol.datatypes import (
    BINARY_ONLY_DATATYPES,
    array_from_raw,
    array_to_raw,
    as_datatype,
    normalize_datatype,
    numpy_dtype,
    shape_problem,
)
from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.v2 import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
    array_from_json,
    check_raw_count,
    check_unique_names,
    select_outputs,
)
from modelplane.protocol.v2_parameters import (
    check_input_parameters,
    check_output_parameters,
    check_request_parameters,
)

# datatype -> the InferTensorContents field that carries it
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def parameters_from_grpc(parameters: Any) -> dict[str, Any] | None:
    if not parameters:
        return None
    decoded = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        decoded[key] = getattr(parameter, choice) if choice else None
    return decoded


def parameters_to_grpc(target: Any, parameters: dict[str, Any] | None) -> None:
    if not parameters:
        return
    for key, value in parameters.items():
        parameter = target[key]
        if isinstance(value, bool | np.bool_):
            parameter.bool_param = bool(value)
        elif isinstance(value, int | np.integer):
            if value > 2**63 - 1:
                parameter.uint64_param = int(value)
            else:
                parameter.int64_param = int(value)
        elif isinstance(value, float | np.floating):
            parameter.double_param = float(value)
        else:
            parameter.string_param = str(value)


def request_from_grpc(message: pb.ModelInferRequest) -> tuple[InferRequest, bool]:
    """The InferRequest for a ModelInfer call, and whether it used raw input contents."""
    check_raw_count(message.inputs, message.raw_input_contents, "input")
    if not message.inputs:
        raise InvalidInput("the request has no inputs")
    parameters = parameters_from_grpc(message.parameters)
    check_request_parameters(parameters)
    decoded = _tensors_from_grpc(message.inputs, message.raw_input_contents, "input")
    check_unique_names(decoded)
    requested = [_requested_output(output) for output in message.outputs] or None
    check_unique_names(requested or (), "requested output")
    request = InferRequest(
        model_name=message.model_name,
        infer_inputs=decoded,
        request_id=message.id,  # "" when the call has none, as KServe reads it (REST's absent id is None)
        parameters=parameters,
        request_outputs=requested,
        model_version=message.model_version or None,
        from_grpc=True,
    )
    request._raw_inputs = bool(message.raw_input_contents)
    return request, request._raw_inputs


def response_from_grpc(message: pb.ModelInferResponse) -> InferResponse:
    """The InferResponse a ModelInfer call answered (read as the server's requests are)."""
    check_raw_count(message.outputs, message.raw_output_contents, "output")
    outputs = [
        InferOutput(tensor.name, tensor.shape, tensor.datatype, tensor._array, tensor.parameters)
        for tensor in _tensors_from_grpc(message.outputs, message.raw_output_contents, "output")
    ]
    response = InferResponse(
        message.id,
        message.model_name,
        outputs,
        model_version=message.model_version or None,
        parameters=parameters_from_grpc(message.parameters),
        from_grpc=True,
    )
    response.id = message.id  # an answer without one keeps "", as in KServe, not a new id
    return response


def _tensors_from_grpc(tensors: Any, raw_contents: Any, kind: str) -> list[InferInput]:
    """The tensors of a request's `inputs` (kind "input") or a response's `outputs` ("output"), their
    data from `contents` or, when there are any, the `raw_*_contents` in order."""
    decoded = []
    for index, tensor in enumerate(tensors):
        label = f"{kind} {tensor.name!r}"
        tensor_parameters = parameters_from_grpc(tensor.parameters)
        if kind == "input":
            check_input_parameters(tensor_parameters, label)
        datatype = normalize_datatype(tensor.datatype)
        shape = list(tensor.shape)
        problem = shape_problem(shape)
        if problem is not None:
            raise InvalidInput(f"{label}: {problem}")
        if raw_contents:
            if tensor.HasField("contents"):
                raise InvalidInput(f"{label}: contents must not be set when raw_{kind}_contents is used")
            array = array_from_raw(raw_contents[index], datatype, shape)
        else:
            array = _array_from_contents(tensor.contents, datatype, shape, label, kind)
        decoded.append(InferInput(tensor.name, shape, datatype, array, tensor_parameters))
    return decoded


def _requested_output(output: pb.ModelInferRequest.InferRequestedOutputTensor) -> RequestedOutput:
    parameters = parameters_from_grpc(output.parameters)
    check_output_parameters(parameters, f"output {output.name!r}")
    return RequestedOutput(output.name, parameters)


def _array_from_contents(
    contents: pb.InferTensorContents, datatype: str, shape: list[int], label: str, kind: str
):
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(f"{label}: {datatype} data must be sent in raw_{kind}_contents")
    values = getattr(contents, field)
    if datatype == "BYTES":
        return array_from_json(list(values), datatype, shape, label)
    try:
        # fromiter reads the repeated field in one pass; np.array(values) is several times slower on it.
        array = np.fromiter(values, dtype=numpy_dtype(datatype), count=len(values))
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"{label}: contents do not fit datatype {datatype}: {exc}") from None
    count = math.prod(shape)
    if array.size != count:
        raise InvalidInput(f"{label}: contents have {array.size} elements but shape {shape} needs {count}")
    return array.reshape(shape)


def response_to_grpc(
    response: InferResponse, request: InferRequest, raw_inputs: bool
) -> pb.ModelInferResponse:
    selected = select_outputs(response, request)
    use_raw = _raw_outputs(selected, request, raw_inputs)
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
    )
    parameters_to_grpc(message.parameters, response.parameters)
    for output, _ in selected:
        _add_tensor(message.outputs, message.raw_output_contents, output, use_raw)
    return message


def request_to_grpc(request: InferRequest) -> pb.ModelInferRequest:
    """The ModelInferRequest for `request`: its inputs all in `raw_input_contents` when any asks to travel
    binary (set with `set_data_from_numpy`'s `binary_data`, FP16 or BF16, or read raw), else all in
    `contents` (a server takes one way or the other for all of a request's inputs)."""
    use_raw = request._raw_inputs or any(
        tensor.datatype in BINARY_ONLY_DATATYPES or (tensor.parameters or {}).get("binary_data")
        for tensor in request.inputs
    )
    message = pb.ModelInferRequest(
        model_name=request.model_name,
        model_version=request.model_version or "",
        id=request.id or "",
    )
    parameters_to_grpc(message.parameters, request.parameters)
    for tensor in request.inputs:
        _add_tensor(message.inputs, message.raw_input_contents, tensor, use_raw)
    for output in request.request_outputs or ():
        parameters_to_grpc(message.outputs.add(name=output.name).parameters, output.parameters)
    return message


def _add_tensor(tensors: Any, raw_contents: Any, tensor: InferInput, raw: bool) -> None:
    """`tensor` added to a message's `inputs` or `outputs`, its data in `contents` or `raw_contents`."""
    array = tensor.as_numpy() if tensor._array is None else tensor._array
    entry = tensors.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
    parameters = {
        k: v for k, v in (tensor.parameters or {}).items() if k not in ("binary_data", "binary_data_size")
    }
    if raw:
        data = array_to_raw(array, tensor.datatype)
        raw_contents.append(data)
        parameters["binary_data_size"] = len(data)
    else:
        values = getattr(entry.contents, CONTENTS_FIELD[tensor.datatype])
        if tensor.datatype == "BYTES":
            values.extend(item if isinstance(item, bytes) else str(item).encode() for item in array.flat)
        else:
            values.extend(as_datatype(array, tensor.datatype).reshape(-1).tolist())
    parameters_to_grpc(entry.parameters, parameters)


def _raw_outputs(selected: list, request: InferRequest, raw_inputs: bool) -> bool:
    """Whether the outputs go in `raw_output_contents` (all of them, or none: a client reads an answer's
    outputs all one way). The request's `binary_data_output` and the outputs' `binary_data` say which,
    and must agree; unsaid, raw inputs give raw outputs. FP16 and BF16 travel only raw."""
    asked = (request.parameters or {}).get("binary_data_output")
    default = raw_inputs if asked is None else asked
    ways = {default if flag is None else flag for _, flag in selected}
    if len(ways) > 1:
        raise InvalidInput(
            "over gRPC every output of an answer travels the same way, all in raw_output_contents or all "
            "in contents: the outputs' binary_data parameters (and the request's binary_data_output) "
            "must agree"
        )
    raw = ways.pop() if ways else default
    half = next((output for output, _ in selected if output.datatype in BINARY_ONLY_DATATYPES), None)
    if half is not None and not raw:
        if asked is not None or any(flag is not None for _, flag in selected):
            raise InvalidInput(
                f"output {half.name!r} is {half.datatype}, which gRPC carries only in raw_output_contents; "
                "ask for the outputs with binary_data (or binary_data_output) true"
            )
        raw = True
    return raw
