"""The parameters of the repository extension's load and unload requests, on REST and gRPC alike.

Triton's load takes a model configuration (`config`) and model files (`file:<path>`) that replace the
repository's; modelplane builds a model only from its folder, so a load that carries them is refused
rather than answered with a model other than the one asked for. modelplane's own `model_id` (a string)
is the id the model answers as, its responses' `model_name`, where that is not its name: ModelMesh's
runtimes load a model under its concrete id (`<name>__isvc-<digest>`) and answer with it. Its own
`schema` (a string) is the text of a ModelMesh model schema file (model_schema.py): the model's metadata
then gives its inputs and outputs, as ModelMesh's runtime adapters make it. An unload's `unload_dependents` is
honoured: no model here depends on another (there are no ensembles), so there is nothing more to unload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.model_schema import ModelSchema, ModelSchemaError, parse_model_schema

_FILE_PREFIX = "file:"
MODEL_ID = "model_id"
SCHEMA = "schema"
_KNOWN = (MODEL_ID, SCHEMA)


@dataclass(frozen=True)
class LoadParameters:
    """What a load's parameters ask for: the id the model answers as, and the schema of its metadata
    (None: none given)."""

    model_id: str | None = None
    schema: ModelSchema | None = None


def check_load_parameters(parameters: dict[str, Any]) -> LoadParameters:
    """The `model_id` and `schema` a load names; refuses (InvalidInput) any other parameter, naming each,
    and a schema that is not one (a load failure, as ModelMesh's adapters fail it)."""
    reasons = [_load_refusal(key) for key in parameters if key not in _KNOWN]
    model_id = parameters.get(MODEL_ID)
    if model_id is not None and (not isinstance(model_id, str) or not model_id):
        reasons.append(f"load parameter {MODEL_ID!r} must be a string that is not empty")
    text, schema = parameters.get(SCHEMA), None
    if text is not None and not isinstance(text, str):
        reasons.append(f"load parameter {SCHEMA!r} must be a string: the text of a model schema file")
    elif text is not None:
        try:
            schema = parse_model_schema(text)
        except ModelSchemaError as exc:
            reasons.append(f"Error parsing schema file: {exc}")
    if reasons:
        raise InvalidInput("; ".join(reasons))
    return LoadParameters(model_id, schema)


def _load_refusal(key: str) -> str:
    if key == "config":
        return (
            "load parameter 'config': modelplane does not take a model configuration in a load request; "
            "a model is built from its folder, as the server built it at start"
        )
    if key.startswith(_FILE_PREFIX):
        return (
            f"load parameter {key!r}: modelplane does not take model files in a load request; put them "
            "in the model's folder and load it by name"
        )
    return (
        f"load parameter {key!r} is not one modelplane knows (a load takes only {MODEL_ID!r} and {SCHEMA!r})"
    )


def check_unload_parameters(parameters: dict[str, Any]) -> None:
    """Refuses (InvalidInput) the parameters of an unload other than a boolean `unload_dependents`."""
    for key, value in parameters.items():
        if key != "unload_dependents":
            raise InvalidInput(
                f"unload parameter {key!r} is not one modelplane knows (only 'unload_dependents')"
            )
        if type(value) is not bool:
            raise InvalidInput("unload parameter 'unload_dependents' must be true or false")


def rest_body(body: bytes, what: str) -> dict[str, Any]:
    """A repository request's REST body: a JSON object, or empty (then {}); `what` names the request
    in the refusal of anything else."""
    if not body.strip():
        return {}
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return document


def rest_parameters(body: bytes) -> dict[str, Any]:
    """The `parameters` of a REST load or unload body (`{"parameters": {...}}`; an empty body has none)."""
    document = rest_body(body, "a load or unload request body")
    unknown = sorted(set(document) - {"parameters"})
    if unknown:
        raise InvalidInput(
            f"a load or unload request takes only 'parameters', not {', '.join(map(repr, unknown))}"
        )
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("'parameters' must be a JSON object")
    return parameters


def grpc_parameters(parameters: Any) -> dict[str, Any]:
    """The values of a gRPC load or unload request's `parameters` (ModelRepositoryParameter by name)."""
    values = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        values[key] = None if choice is None else getattr(parameter, choice)
    return values
