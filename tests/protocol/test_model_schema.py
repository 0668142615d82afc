"""ModelMesh's model schema file, read as its runtime adapters read it (modelmesh-runtime-adapter's
internal/modelschema): the V2 metadata of a model's inputs and outputs."""

from __future__ import annotations

import json

import pytest

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.model_schema import ModelSchema, ModelSchemaError, check_inputs, parse_model_schema
from modelplane.protocol.v2 import InferInput

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


def tensor(name: str, datatype: str = "FP32", shape: tuple[int, ...] = (2, 28, 28)) -> InferInput:
    return InferInput(name, list(shape), datatype)


TWO_INPUTS = [
    {"name": "image", "datatype": "FP32", "shape": [-1, 28, 28]},
    {"name": "scale", "datatype": "INT64", "shape": [-1]},
]


@pytest.mark.parametrize(
    "inputs, message",
    [
        (
            [tensor("image")],
            "expected 2 inputs but got 1 inputs for model 'm__isvc-1'. Got input(s) ['image'], but missing "
            "required input(s) ['scale']. Please provide all required input(s).",
        ),
        (
            [tensor("image"), tensor("scales", "INT64", (2,))],
            "unexpected inference input 'scales' for model 'm__isvc-1'",
        ),
        (
            [tensor("image", "FP64"), tensor("scale", "INT64", (2,))],
            "inference input 'image' data-type is 'FP64', but model 'm__isvc-1' expects 'FP32'",
        ),
        (
            [tensor("image", shape=(2, 28)), tensor("scale", "INT64", (2,))],
            "unexpected shape for input 'image' for model 'm__isvc-1'. Expected [-1,28,28], got [2,28].",
        ),
        (
            [tensor("image", shape=(2, 28, 27)), tensor("scale", "INT64", (2,))],
            "unexpected shape for input 'image' for model 'm__isvc-1'. Expected [-1,28,28], got [2,28,27].",
        ),
    ],
    ids=["missing", "unknown", "datatype", "rank", "dimension"],
)
def test_a_request_that_does_not_fit_the_schema_is_refused_in_tritons_words(inputs, message):
    with pytest.raises(InvalidInput) as refused:
        check_inputs(TWO_INPUTS, inputs, "m__isvc-1")
    assert str(refused.value) == message


def test_a_request_that_fits_passes_whatever_the_size_of_a_wildcard_dimension():
    for rows in (1, 7):
        check_inputs(
            TWO_INPUTS, [tensor("scale", "INT64", (rows,)), tensor("image", shape=(rows, 28, 28))], "m"
        )
    # A schema tensor without a datatype or shape is not checked for it.
    check_inputs([{"name": "x", "datatype": "", "shape": []}], [tensor("x", "BYTES", (3,))], "m")
