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
    InferRequest,
    InferResponse,
    RequestedOutput,
    array_from_json,
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
    raw_contents = message.raw_input_contents
    inputs = message.inputs
    if raw_contents and len(raw_contents) != len(inputs):
        raise InvalidInput(
            f"the number of inputs ({len(inputs)}) does not match the number of raw input contents "
            f"({len(raw_contents)})"
        )
    if not inputs:
        raise InvalidInput("the request has no inputs")
    parameters = parameters_from_grpc(message.parameters)
    check_request_parameters(parameters)
    decoded = []
    for index, tensor in enumerate(inputs):
        label = f"input {tensor.name!r}"
        tensor_parameters = parameters_from_grpc(tensor.parameters)
        check_input_parameters(tensor_parameters, label)
        datatype = normalize_datatype(tensor.datatype)
        shape = list(tensor.shape)
        problem = shape_problem(shape)
        if problem is not None:
            raise InvalidInput(f"{label}: {problem}")
        if raw_contents:
            if tensor.HasField("contents"):
                raise InvalidInput(f"{label}: contents must not be set when raw_input_contents is used")
            array = array_from_raw(raw_contents[index], datatype, shape)
        else:
            array = _array_from_contents(tensor.contents, datatype, shape, label)
        decoded.append(InferInput(tensor.name, shape, datatype, array, tensor_parameters))
    check_unique_names(decoded)
    requested = [_requested_output(output) for output in message.outputs] or None
    check_unique_names(requested or (), "requested output")
    request = InferRequest(
        model_name=message.model_name,
        infer_inputs=decoded,
        request_id=message.id or None,
        parameters=parameters,
        request_outputs=requested,
        model_version=message.model_version or None,
        from_grpc=True,
    )
    return request, bool(raw_contents)


def _requested_output(output: pb.ModelInferRequest.InferRequestedOutputTensor) -> RequestedOutput:
    parameters = parameters_from_grpc(output.parameters)
    check_output_parameters(parameters, f"output {output.name!r}")
    return RequestedOutput(output.name, parameters)


def _array_from_contents(contents: pb.InferTensorContents, datatype: str, shape: list[int], label: str):
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(f"{label}: {datatype} data must be sent in raw_input_contents")
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
        array = output.as_numpy() if output._array is None else output._array
        tensor = message.outputs.add(name=output.name, datatype=output.datatype, shape=output.shape)
        parameters = {k: v for k, v in (output.parameters or {}).items() if k != "binary_data"}
        if use_raw:
            raw = array_to_raw(array, output.datatype)
            message.raw_output_contents.append(raw)
            parameters["binary_data_size"] = len(raw)
        else:
            values = getattr(tensor.contents, CONTENTS_FIELD[output.datatype])
            if output.datatype == "BYTES":
                values.extend(item if isinstance(item, bytes) else str(item).encode() for item in array.flat)
            else:
                values.extend(as_datatype(array, output.datatype).reshape(-1).tolist())
        parameters_to_grpc(tensor.parameters, parameters)
    return message


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
