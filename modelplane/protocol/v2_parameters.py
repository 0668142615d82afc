"""What the server itself does with the parameters of a V2 request, whatever the model, on REST and gRPC.

Request `parameters`:

- `binary_data_output`: every output in the binary extension (REST), in `raw_output_contents` (gRPC);
  true or false.
- `timeout` (Triton's, in microseconds): past it the request ends with 504 / DEADLINE_EXCEEDED; 0 is no
  limit.
- `priority` (Triton's): modelplane has one priority level; a request with another is served as any
  other, and its answer says the priority was ignored.
- `sequence_id`, `sequence_start`, `sequence_end` (Triton's sequence batcher): modelplane has none, so
  a request that asks to be part of a sequence is refused.
- keys starting with `triton_`: refused, as Triton refuses them.

An input's `binary_data_size` (and `binary_data`) say how it travelled; an output's `binary_data` how
it goes back, and its `classification` asks for its top classes (`v2_classification.py`). The
shared-memory extension's `shared_memory_*` parameters are refused on either: modelplane does not serve
it, and the data would not be where the client looks.

Every other parameter is the model's. A custom model is given them all and decides; a built-in runtime
says which request parameters it reads (`Model.reads_parameters`) and which of its inputs'
(`Model.reads_input_parameters`), and its answer names the parameters it did not read
(`ignored_parameters`, among the response's parameters), so that none is dropped without a word.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from modelplane.protocol.errors import InvalidInput

if TYPE_CHECKING:
    from modelplane.protocol.v2 import InferRequest

Parameters = dict[str, Any]

# The key, among a response's parameters, naming the request's parameters that were ignored.
IGNORED = "ignored_parameters"

SEQUENCE = ("sequence_id", "sequence_start", "sequence_end")
SHARED_MEMORY = ("shared_memory_region", "shared_memory_offset", "shared_memory_byte_size")

# What the server acts on (or refuses) itself, whichever the model.
SERVER_REQUEST_PARAMETERS = frozenset({"binary_data_output", "timeout", "priority", *SEQUENCE})
SERVER_INPUT_PARAMETERS = frozenset({"binary_data_size", "binary_data"})
SERVER_OUTPUT_PARAMETERS = frozenset({"binary_data", "classification"})


def _shown(value: object) -> str:
    return json.dumps(value)[:40]


def check_boolean_parameter(parameters: Parameters | None, key: str, what: str) -> None:
    """Refuses a flag given as anything but a boolean: the string "false" would otherwise count as true."""
    value = parameters.get(key) if parameters else None
    if value is not None and type(value) is not bool:
        raise InvalidInput(f"{what}: parameter {key!r} must be true or false, got {_shown(value)}")


def _check_unsigned(parameters: Parameters, key: str, meaning: str, what: str) -> None:
    value = parameters.get(key)
    if value is not None and not (type(value) is int and value >= 0):
        raise InvalidInput(
            f"{what}: parameter {key!r} must be a non-negative integer ({meaning}), got {_shown(value)}"
        )


def check_request_parameters(parameters: Parameters | None, what: str = "request") -> None:
    """Refuses the request parameters the server cannot honour, and those of the wrong type."""
    if not parameters:
        return
    for key in parameters:
        if key.startswith("triton_"):
            raise InvalidInput(
                f"{what}: parameter {key!r}: parameter keys starting with 'triton_' are reserved for "
                "Triton usage and should not be specified."
            )
    check_boolean_parameter(parameters, "binary_data_output", what)
    _check_unsigned(parameters, "timeout", "microseconds", what)
    _check_unsigned(parameters, "priority", "a priority level", what)
    sequence_id = parameters.get("sequence_id")
    if sequence_id is not None and not isinstance(sequence_id, str):
        _check_unsigned(parameters, "sequence_id", "or a string", what)
    check_boolean_parameter(parameters, "sequence_start", what)
    check_boolean_parameter(parameters, "sequence_end", what)
    for key in SEQUENCE:
        if parameters.get(key) not in (None, 0, "", False):
            raise InvalidInput(
                f"{what}: parameter {key!r} asks for a sequence (Triton's sequence batcher), which "
                "modelplane does not have: each request is served on its own, and no model keeps a "
                "sequence's state between requests"
            )


def _refuse_shared_memory(parameters: Parameters, what: str, instead: str) -> None:
    for key in SHARED_MEMORY:
        if key in parameters:
            raise InvalidInput(
                f"{what}: parameter {key!r}: modelplane does not serve the shared-memory extension "
                f"(system or CUDA shared memory); {instead}"
            )


def check_input_parameters(parameters: Parameters | None, what: str) -> None:
    if parameters:
        _refuse_shared_memory(
            parameters, what, "send the tensor in the request (JSON 'data', or the binary extension)"
        )


def check_output_parameters(parameters: Parameters | None, what: str) -> None:
    if not parameters:
        return
    _refuse_shared_memory(
        parameters, what, "outputs come back in the response (JSON, or binary with binary_data true)"
    )
    check_boolean_parameter(parameters, "binary_data", what)
    count = parameters.get("classification")
    if "classification" in parameters and not (type(count) is int and count > 0):
        raise InvalidInput(
            f"{what}: parameter 'classification' must be a positive integer (the number of classes), "
            f"got {_shown(count)}"
        )


def request_timeout(request: InferRequest) -> float | None:
    """The seconds a request's `timeout` parameter gives it; None for none (or 0)."""
    microseconds = request.parameters.get("timeout") if request.parameters else None
    return microseconds / 1e6 if microseconds else None


def ignored_parameters(
    request: InferRequest,
    reads: Collection[str] | None,
    model_name: str,
    reads_of_inputs: Collection[str] = (),
) -> list[str]:
    """What the answer to `request` says was ignored: a priority always (there is one level), and for a
    model that says which request parameters it reads (`reads`; None: any), every other parameter of
    the request, of its inputs (but those in `reads_of_inputs`) and of its requested outputs the server
    does not act on itself."""
    notes = []
    parameters = request.parameters or {}
    if parameters.get("priority"):
        notes.append("parameter 'priority' of the request: modelplane serves every request at one priority")
    if reads is None:
        return notes
    unread = f"model {model_name} does not read it"
    notes += [
        f"parameter {key!r} of the request: {unread}"
        for key in parameters
        if key not in SERVER_REQUEST_PARAMETERS and key not in reads
    ]
    for tensor in request.inputs:
        notes += [
            f"parameter {key!r} of input {tensor.name!r}: {unread}"
            for key in tensor.parameters or ()
            if key not in SERVER_INPUT_PARAMETERS and key not in reads_of_inputs
        ]
    for output in request.request_outputs or ():
        notes += [
            f"parameter {key!r} of output {output.name!r}: {unread}"
            for key in output.parameters or ()
            if key not in SERVER_OUTPUT_PARAMETERS
        ]
    return notes
