"""What a model returned to a V2 request, as the InferResponse the protocols send."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from modelplane.protocol.errors import InferenceError
from modelplane.protocol.v2 import InferRequest, InferResponse, decode_outputs, output_from_array
from modelplane.protocol.v2_classification import classify_outputs
from modelplane.protocol.v2_parameters import IGNORED, ignored_parameters


def v2_answer(result: Any, request: InferRequest, model: Any) -> InferResponse:
    """The response a V2 request gets (before its outputs are picked and encoded): what the model
    returned, with the outputs asked for as classes classified, and the parameters the model did not
    read named among the response's parameters."""
    response = as_infer_response(result, request, model)
    if not (request.parameters or request.request_outputs or _any_input_parameters(request)):
        return response  # nothing to classify, and nothing ignored: most requests
    response = classify_outputs(response, request, getattr(model, "classification_labels", None))
    notes = ignored_parameters(
        request,
        getattr(model, "reads_parameters", None),
        request.model_name,
        getattr(model, "reads_input_parameters", frozenset()),
    )
    if notes:
        parameters = dict(response.parameters or {})  # a batch's answers may share the model's dict
        said = parameters.get(IGNORED)
        parameters[IGNORED] = "; ".join([said, *notes] if isinstance(said, str) and said else notes)
        response.parameters = parameters
    return response


def picking_request(request: InferRequest, model: Any) -> InferRequest:
    """The request whose requested outputs pick the outputs of the answer: `request`, or for a model
    that answers the same outputs whatever is asked, a copy that asks for none (so all are sent)."""
    if not request.request_outputs or getattr(model, "answers_requested_outputs", True):
        return request
    picking = copy.copy(request)
    picking.request_outputs = None
    return picking


def _any_input_parameters(request: InferRequest) -> bool:
    return any(tensor.parameters for tensor in request.inputs)


def as_infer_response(result: Any, request: InferRequest, model: Any) -> InferResponse:
    """What a model returned to a V2 request, as an InferResponse."""
    if isinstance(result, InferResponse):
        if result.model_version is None:
            result.model_version = getattr(model, "version", None)
        return result
    if isinstance(result, dict) and "outputs" in result:
        outputs = decode_outputs(result["outputs"], None, "model response")
        return InferResponse(result.get("id") or request.id, request.model_name, outputs)
    if isinstance(result, np.ndarray | list | tuple):
        return InferResponse(
            request.id,
            request.model_name,
            [output_from_array("output-0", result)],
            model_version=getattr(model, "version", None),
        )
    raise InferenceError(
        f"model {request.model_name} returned {type(result).__name__} to a V2 request; "
        "expected an InferResponse, a V2 response dict or an array"
    )
