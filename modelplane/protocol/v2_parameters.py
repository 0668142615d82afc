"""What the server itself does with the parameters of a V2 request, whatever the model, on REST and gRPC.

A request's `binary_data_output` and an output's `binary_data` say how the outputs go back; an output's
`classification` asks for its top classes (`v2_classification.py`).
"""

from __future__ import annotations

import json
from typing import Any

from modelplane.protocol.errors import InvalidInput

Parameters = dict[str, Any]


def _shown(value: object) -> str:
    return json.dumps(value)[:40]


def check_boolean_parameter(parameters: Parameters | None, key: str, what: str) -> None:
    """Refuses a flag given as anything but a boolean: the string "false" would otherwise count as true."""
    value = parameters.get(key) if parameters else None
    if value is not None and type(value) is not bool:
        raise InvalidInput(f"{what}: parameter {key!r} must be true or false, got {_shown(value)}")


def check_output_parameters(parameters: Parameters | None, what: str) -> None:
    if not parameters:
        return
    check_boolean_parameter(parameters, "binary_data", what)
    count = parameters.get("classification")
    if "classification" in parameters and not (type(count) is int and count > 0):
        raise InvalidInput(
            f"{what}: parameter 'classification' must be a positive integer (the number of classes), "
            f"got {_shown(count)}"
        )
