"""Which requests can share a model call, how their payloads are stacked into one, and how the answer
is split back.

- V1: a request whose body is an object with a non-empty `instances` list. Requests whose other fields
  are equal share a call: their instances are concatenated, and the answer's `predictions` are split
  back, the same count to each request as it sent.
- V2 (REST and gRPC alike): a request whose inputs all have the same first dimension (its rows).
  Requests with the same input names, datatypes, non-batch dimensions and parameters, asking for the
  same outputs, with the same `use_binary_outputs` and inputs raw or not alike (what the model can read
  of how they travelled), share a call: each input is concatenated along dimension 0, and each output
  of the answer is split back by rows.

Anything else (raw bytes, V1 `inputs`, inputs of different lengths, no rows) runs alone.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import orjson

from modelplane.protocol.random_ids import random_uuid
from modelplane.protocol.v2 import InferInput, InferOutput, InferRequest, InferResponse
from modelplane.server.batching import WholeBatchError
from modelplane.server.responses import as_infer_response

# Parameters that say how a tensor travels, not what it is, and those the server applies to each request
# on its own (its timeout; its priority, which it ignores): they may differ within a batch.
_WIRE_PARAMETERS = frozenset({"binary_data_size", "binary_data", "binary_data_output", "timeout", "priority"})


def batch_key(payload: Any) -> tuple[Hashable, int] | None:
    """The key shared by the requests this one may be batched with, and its rows; None if it runs alone."""
    if isinstance(payload, InferRequest):
        return _v2_key(payload)
    if isinstance(payload, dict):
        return _v1_key(payload)
    return None


def stack(payloads: Sequence[Any]) -> Any:
    """One payload holding the rows of `payloads` (requests of one key), in order."""
    if isinstance(payloads[0], InferRequest):
        return _stack_v2(payloads)
    first = payloads[0]
    return {**first, "instances": [instance for payload in payloads for instance in payload["instances"]]}


def split(result: Any, stacked: Any, payloads: Sequence[Any], rows: Sequence[int], model: Any) -> list[Any]:
    """The model's answer to `stacked` (made by `stack(payloads)`), as each request's own answer;
    WholeBatchError if it has not one entry per row."""
    if isinstance(stacked, InferRequest):
        return _split_v2(as_infer_response(result, stacked, model), payloads, rows)
    return _split_v1(result, rows, getattr(model, "name", ""))


# -- V1 ------------------------------------------------------------------------------------------


def _v1_key(payload: dict) -> tuple[Hashable, int] | None:
    instances = payload.get("instances")
    if not isinstance(instances, list) or not instances or "inputs" in payload:  # inputs are read first
        return None
    if len(payload) == 1:
        return ("v1",), len(instances)
    others = {name: value for name, value in payload.items() if name != "instances"}
    try:
        return ("v1", orjson.dumps(others, option=orjson.OPT_SORT_KEYS)), len(instances)
    except TypeError:
        return None


def _split_v1(result: Any, rows: Sequence[int], model_name: str) -> list[Any]:
    total = sum(rows)
    predictions = result.get("predictions") if isinstance(result, dict) else None
    if not isinstance(predictions, list | tuple | np.ndarray) or len(predictions) != total:
        raise WholeBatchError(
            f"model {model_name} answered a batch of {total} instances with {_describe_v1(result)}; "
            'a batched model must answer {"predictions": [...]} with one prediction per instance'
        )
    answers = []
    start = 0
    for count in rows:
        answers.append({**result, "predictions": predictions[start : start + count]})
        start += count
    return answers


def _describe_v1(result: Any) -> str:
    if not isinstance(result, dict):
        return f"a {type(result).__name__}"
    predictions = result.get("predictions")
    if predictions is None:
        return "no predictions"
    if isinstance(predictions, list | tuple | np.ndarray):
        return f"{len(predictions)} predictions"
    return f"predictions of type {type(predictions).__name__}"


# -- V2 ------------------------------------------------------------------------------------------


def _v2_key(request: InferRequest) -> tuple[Hashable, int] | None:
    rows = None
    inputs = []
    for infer_input in request.inputs:
        shape = infer_input.shape
        if not shape or (rows is not None and shape[0] != rows):
            return None
        rows = shape[0]
        inputs.append(
            (
                infer_input.name,
                infer_input.datatype,
                tuple(shape[1:]),
                _parameters_key(infer_input.parameters),
            )
        )
    if not rows:
        return None
    requested = request.request_outputs
    outputs = None if requested is None else tuple(output.name for output in requested)
    travel = (request.from_grpc, request._raw_inputs, request.use_binary_outputs)
    key = ("v2", travel, _parameters_key(request.parameters), tuple(inputs), outputs)
    return key, rows


def _parameters_key(parameters: dict | None) -> tuple:
    if not parameters:
        return ()
    # The type is part of the key: True == 1 in Python, but a model may tell them apart.
    return tuple(
        sorted(
            (name, type(value).__name__, value)
            for name, value in parameters.items()
            if name not in _WIRE_PARAMETERS
        )
    )


def _without_wire_parameters(parameters: dict | None) -> dict | None:
    if not parameters:
        return parameters
    kept = {name: value for name, value in parameters.items() if name not in _WIRE_PARAMETERS}
    return kept or None


def _stack_v2(requests: Sequence[InferRequest]) -> InferRequest:
    first = requests[0]
    inputs = []
    for index, template in enumerate(first.inputs):
        data = np.concatenate([request.inputs[index].as_numpy() for request in requests])
        inputs.append(
            InferInput(
                template.name,
                list(data.shape),
                template.datatype,
                data,
                _without_wire_parameters(template.parameters),
            )
        )
    stacked = InferRequest(
        first.model_name,
        inputs,
        request_id=None,
        parameters=first.parameters,
        request_outputs=first.request_outputs,
        model_version=first.model_version,
        from_grpc=first.from_grpc,
    )
    stacked._raw_inputs = first._raw_inputs
    return stacked


def _split_v2(
    response: InferResponse, requests: Sequence[InferRequest], rows: Sequence[int]
) -> list[InferResponse]:
    total = sum(rows)
    bounds = np.cumsum(rows)[:-1]
    outputs: list[list[InferOutput]] = [[] for _ in requests]
    for output in response.outputs:
        array = output.as_numpy()
        if array.ndim == 0 or array.shape[0] != total:
            raise WholeBatchError(
                f"model {response.model_name} answered a batch of {total} rows with output "
                f"{output.name!r} of shape {list(array.shape)}; a batched model must answer one row "
                "per input row in every output"
            )
        for answer, part in zip(outputs, np.split(array, bounds), strict=True):
            answer.append(
                InferOutput(output.name, list(part.shape), output.datatype, part, output.parameters)
            )
    # A request without an id gets one of its own, as it would alone, not the stacked request's.
    return [
        response.with_outputs(answer, request.id or random_uuid())
        for request, answer in zip(requests, outputs, strict=True)
    ]
