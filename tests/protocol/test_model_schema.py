"""ModelMesh's model schema file, read as its runtime adapters read it (modelmesh-runtime-adapter's
internal/modelschema): the V2 metadata of a model's inputs and outputs."""

from __future__ import annotations

import json

import pytest

from modelplane.protocol.model_schema import ModelSchema, ModelSchemaError, parse_model_schema

# modelmesh-serving's docs/predictors/schema.md sample.
MNIST = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 28, 28]}],
    "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}],
}


def test_the_inputs_and_outputs_are_v2_tensor_metadata():
    schema = parse_model_schema(json.dumps(MNIST))
    assert schema == ModelSchema(MNIST["inputs"], MNIST["outputs"])


def test_a_list_left_out_leaves_the_models_own_and_other_fields_are_dropped():
    """The adapter's TensorMetadata has name, datatype and shape; a schema with inputs only leaves the
    outputs to the model (MLServer's adapter sets outputs only where the schema has them)."""
    text = json.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [4], "parameters": {}}], "v": 1})
    assert parse_model_schema(text) == ModelSchema([{"name": "x", "datatype": "FP64", "shape": [4]}], None)
    assert parse_model_schema('{"inputs": [], "outputs": null}') == ModelSchema([], None)
    assert parse_model_schema("null") == ModelSchema()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not JSON"),
        ("[]", "a JSON object was expected, not a list"),
        ('{"inputs": {"name": "x"}}', "inputs must be a list, not an object"),
        ('{"outputs": ["x"]}', "outputs[0] must be an object, not a string"),
        ('{"inputs": [{"name": 3}]}', "inputs[0].name must be a string, not a number"),
        ('{"inputs": [{"datatype": true}]}', "inputs[0].datatype must be a string, not a boolean"),
        ('{"inputs": [{"shape": [1.5]}]}', "inputs[0].shape must be a list of whole numbers, not [1.5]"),
        ('{"inputs": [{"shape": "1,4"}]}', 'inputs[0].shape must be a list of whole numbers, not "1,4"'),
    ],
)
def test_a_malformed_schema_says_what_is_wrong(text, why):
    with pytest.raises(ModelSchemaError) as raised:
        parse_model_schema(text)
    assert str(raised.value).startswith("Unable to parse model schema JSON: ")
    assert why in str(raised.value)
