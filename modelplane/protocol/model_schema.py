"""ModelMesh's model schema: a JSON file beside the model, in KServe V2 metadata's terms, that its runtime
adapters turn into the model's metadata (MLServer's model-settings.json, Triton's config.pbtxt):

    {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 28, 28]}],
     "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]}

It is read as the adapters read it (modelmesh-runtime-adapter's internal/modelschema): the fields of a
tensor are `name`, `datatype` and `shape` (others are dropped), either list may be left out (the
model's own then stands), and a field of the wrong type makes the file malformed, a load failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


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


def _malformed(why: str) -> ModelSchemaError:
    return ModelSchemaError(f"Unable to parse model schema JSON: {why}")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), "null")
