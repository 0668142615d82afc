"""ModelMesh's model schema: a JSON file beside the model, in KServe V2 metadata's terms, that its runtime
adapters turn into the model's metadata (MLServer's model-settings.json, Triton's config.pbtxt):

    {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 28, 28]}],
     "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]}

It is read as the adapters read it (modelmesh-runtime-adapter's internal/modelschema): the fields of a
tensor are `name`, `datatype` and `shape` (others are dropped), either list may be left out (the
model's own then stands), and a field of the wrong type makes the file malformed, a load failure.

A V2 request is checked against the schema's inputs as Triton, ModelMesh's usual runtime, checks it
against the config.pbtxt the adapter writes from the schema (`check_inputs`), in Triton's words.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.protocol.errors import InvalidInput


class ModelSchemaError(ValueError):
    """A schema file that cannot be read as a model schema."""


@dataclass(frozen=True)
class ModelSchema:
    """The metadata of a model's tensors (`{name, datatype, shape}` each), None where the schema gives
    none."""

    inputs: list[dict] | None = None
    outputs: list[dict] | None = None


def parse_model_schema(text: str | bytes) -> ModelSchema:
    """The schema a file's text holds; ModelSchemaError says what is wrong with it, in the words of
    ModelMesh's adapters ("Unable to parse model schema JSON: ...")."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _malformed(f"not JSON: {exc}") from None
    if document is None:
        return ModelSchema()  # JSON null: a schema that gives nothing, as Go reads it
    if not isinstance(document, dict):
        raise _malformed(f"a JSON object was expected, not {_json_type(document)}")
    return ModelSchema(_tensors(document, "inputs"), _tensors(document, "outputs"))


def _tensors(document: dict, key: str) -> list[dict] | None:
    tensors = document.get(key)
    if tensors is None:
        return None
    if not isinstance(tensors, list):
        raise _malformed(f"{key} must be a list, not {_json_type(tensors)}")
    return [_tensor(tensor, f"{key}[{index}]") for index, tensor in enumerate(tensors)]


def _tensor(tensor: object, where: str) -> dict:
    if not isinstance(tensor, dict):
        raise _malformed(f"{where} must be an object, not {_json_type(tensor)}")
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    for field, value in (("name", name), ("datatype", datatype)):
        if value is not None and not isinstance(value, str):
            raise _malformed(f"{where}.{field} must be a string, not {_json_type(value)}")
    if shape is not None and not (
        isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    ):
        raise _malformed(f"{where}.shape must be a list of whole numbers, not {json.dumps(shape)}")
    return {"name": name or "", "datatype": datatype or "", "shape": shape or []}


def check_inputs(schema_inputs: list[dict], inputs: Sequence[Any], model_name: str) -> None:
    """Refuses (InvalidInput), as Triton refuses a request that does not fit its model's config: as many
    inputs as the schema has, each one of its names, of its datatype, and of its shape (a -1 dimension
    takes any size). Triton checks in this order, and names the model by the id it loaded it under. A
    schema tensor without a datatype or a shape is not checked for it."""
    expected = {tensor["name"]: tensor for tensor in schema_inputs}
    given = [tensor.name for tensor in inputs]
    if len(given) != len(expected):
        missing = [name for name in expected if name not in given]
        raise InvalidInput(
            f"expected {len(expected)} inputs but got {len(given)} inputs for model '{model_name}'. "
            f"Got input(s) {_names(given)}, but missing required input(s) {_names(missing)}. "
            "Please provide all required input(s)."
        )
    for tensor in inputs:
        if tensor.name not in expected:
            raise InvalidInput(f"unexpected inference input '{tensor.name}' for model '{model_name}'")
    for tensor in inputs:
        wanted = expected[tensor.name]
        if wanted["datatype"] and tensor.datatype != wanted["datatype"]:
            raise InvalidInput(
                f"inference input '{tensor.name}' data-type is '{tensor.datatype}', but model "
                f"'{model_name}' expects '{wanted['datatype']}'"
            )
        if wanted["shape"] and not _fits(list(tensor.shape), wanted["shape"]):
            raise InvalidInput(
                f"unexpected shape for input '{tensor.name}' for model '{model_name}'. Expected "
                f"{_dims(wanted['shape'])}, got {_dims(tensor.shape)}."
            )


def _fits(shape: list[int], wanted: list[int]) -> bool:
    return len(shape) == len(wanted) and all(w == -1 or w == d for d, w in zip(shape, wanted, strict=True))


def _names(names: list[str]) -> str:
    return "[" + ",".join(f"'{name}'" for name in names) + "]"


def _dims(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(dim) for dim in shape) + "]"


def _malformed(why: str) -> ModelSchemaError:
    return ModelSchemaError(f"Unable to parse model schema JSON: {why}")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), "null")
