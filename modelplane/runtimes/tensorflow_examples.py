"""TF Serving's Classify and Regress, for the tensorflow runtime: a batch of tf.Example protos fed,
serialized, to a signature's one string input `inputs`, and the signature's outputs read back as
classes and scores (`classes` [batch, n] string and/or `scores` [batch, n] float32) or as regression
values (`outputs` [batch] or [batch, 1] float32).

A signature is picked by name (`serving_default` unless the request names another) and checked by its
inputs and outputs, as TF Serving checks it by default (its --enable_signature_method_name_check is
off): a TF2 SavedModel's signatures all say `tensorflow/serving/predict`, and still classify. The
error texts are TF Serving's.

REST bodies: `{"signature_name": ..., "context": {feature: value(s)}, "examples": [{feature: value(s)},
...]}`; a whole number is an int64 feature, a decimal number a float one, a string or `{"b64": ...}` a
bytes one, true/false an int64 1/0. The context's features are merged into each example (an example's
own feature of the same name wins), as TF Serving merges them. The answers are
`{"results": [[[label, score], ...], ...]}` and `{"results": [value, ...]}`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from modelplane.protocol import base64_text
from modelplane.protocol.errors import InvalidInput
from modelplane.runtimes.tensorflow_signature import DEFAULT_SIGNATURE, Signature

CLASSIFY, REGRESS = "classify", "regress"
VERBS = (CLASSIFY, REGRESS)
INPUTS, CLASSES, SCORES, OUTPUTS = "inputs", "classes", "scores", "outputs"
REQUEST_KEYS = ("signature_name", "context", "examples")
_INT64_MAX = 2**63 - 1


class ExampleBatch(NamedTuple):
    """A Classify or Regress request, read: the signature it names (None: the default) and each
    example serialized, with the context's features already in it."""

    signature_name: str | None
    serialized: list[bytes]


# -- REST requests ---------------------------------------------------------------------------------


def read_json_request(body: Any, verb: str) -> ExampleBatch:
    if not isinstance(body, dict):
        raise InvalidInput(f'a :{verb} request must be a JSON object with "examples"')
    unknown = [key for key in body if key not in REQUEST_KEYS]
    if unknown:
        raise InvalidInput(
            f"unknown key(s) {', '.join(map(repr, unknown))} in the request; :{verb} takes "
            '"signature_name", "context" and "examples"'
        )
    name = body.get("signature_name")
    if name is not None and not isinstance(name, str):
        raise InvalidInput("'signature_name' key must be a string value.")
    context = _features(body["context"]) if "context" in body else {}
    if "examples" not in body:
        raise InvalidInput(f"When method is {verb}, key 'examples' is expected and was not found")
    examples = body["examples"]
    if not isinstance(examples, list):
        raise InvalidInput("Expecting 'examples' value to be an list/array")
    if not examples:
        raise InvalidInput("'examples' value is an empty array")
    from tensorflow.core.example.example_pb2 import Example

    serialized = []
    for example in examples:
        features = {**context, **_features(example)}
        serialized.append(Example(features={"feature": features}).SerializeToString())
    return ExampleBatch(name or None, serialized)


def _features(value: Any) -> dict:
    """A JSON object of features as tf.train.Feature protos, by name."""
    if not isinstance(value, dict):
        raise InvalidInput(f"Example must be JSON object but got JSON {_json_type(value)}")
    from tensorflow.core.example.feature_pb2 import Feature

    features = {}
    for name, content in value.items():
        feature = Feature()
        for item in content if isinstance(content, list) else [content]:
            _add_value(feature, name, item)
        features[name] = feature
    return features


def _add_value(feature: Any, name: str, value: Any) -> None:
    if isinstance(value, bool):
        _values(feature, "int64_list", name).append(int(value))
    elif isinstance(value, int):
        if value > _INT64_MAX:
            raise InvalidInput(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        _values(feature, "int64_list", name).append(value)
    elif isinstance(value, float):
        _values(feature, "float_list", name).append(value)
    elif isinstance(value, str):
        _values(feature, "bytes_list", name).append(value.encode())
    elif isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str):
        _values(feature, "bytes_list", name).append(_b64decode(value["b64"]))
    else:
        raise InvalidInput(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")


def _values(feature: Any, kind: str, name: str) -> Any:
    """The repeated values of `feature`'s list of `kind`, if it holds that kind or none yet."""
    held = feature.WhichOneof("kind")
    if held not in (None, kind):
        expecting = {"int64_list": "int64", "float_list": "float", "bytes_list": "bytes"}[held]
        raise InvalidInput(f"Unexpected element type in feature: {name} expecting type: {expecting}")
    return getattr(feature, kind).value


def _b64decode(text: str) -> bytes:
    try:
        return base64_text.decode(text + "=" * (-len(text) % 4), strict=True)
    except (base64_text.Error, ValueError):
        raise InvalidInput("Unable to base64 decode") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    for kind, name in ((dict, "Object"), (list, "Array"), (str, "String"), ((int, float), "Number")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


# -- gRPC requests ---------------------------------------------------------------------------------


def read_input_proto(signature_name: str, input_proto: Any) -> ExampleBatch:
    """A tensorflow.serving.Input (an ExampleList, or an ExampleListWithContext whose context's bytes
    go before each example's, as TF Serving joins them: protobuf reads the later feature of a name)."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        serialized = [example.SerializeToString() for example in input_proto.example_list.examples]
    elif kind == "example_list_with_context":
        listed = input_proto.example_list_with_context
        context = listed.context.SerializeToString()
        serialized = [context + example.SerializeToString() for example in listed.examples]
    else:
        serialized = []  # refused once the signature is found, as TF Serving refuses it
    return ExampleBatch(signature_name or None, serialized)


def input_proto_as_json(signature_name: str, input_proto: Any) -> dict:
    """A tensorflow.serving.Input as the JSON request REST's :classify and :regress take, for a model
    that serves them from that JSON (a transformer, which passes it on to its predictor): the
    context's features apart, under "context", as a REST client sends them. A feature of one value is
    that value, of several a list; a bytes value is its text, or `{"b64": ...}` where it is not UTF-8;
    a float one is the shortest decimal of its float32."""
    body: dict[str, Any] = {"signature_name": signature_name} if signature_name else {}
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list_with_context":
        listed = input_proto.example_list_with_context
        body["context"] = _json_features(listed.context)
        examples = listed.examples
    else:
        examples = input_proto.example_list.examples if kind == "example_list" else []
    body["examples"] = [_json_features(example) for example in examples]
    return body


def _json_features(example: Any) -> dict:
    features = {}
    for name, feature in sorted(example.features.feature.items()):
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        if kind == "bytes_list":
            values = [_json_bytes(value) for value in values]
        elif kind == "float_list":
            values = [float(str(np.float32(value))) for value in values]
        features[name] = values[0] if len(values) == 1 else values
    return features


def _json_bytes(value: bytes) -> Any:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode()}


# -- signatures and results ------------------------------------------------------------------------


def signature_of(signatures: dict[str, Signature], name: str | None) -> Signature:
    name = name or DEFAULT_SIGNATURE
    found = signatures.get(name)
    if found is None:
        raise InvalidInput(f"No signature was found with the name: {name}")
    return found


def check_classification(signature: Signature, signature_def: Callable[[], str]) -> None:
    """TF Serving's PreProcessClassification: one input `inputs`, one or two outputs of which
    `classes` or `scores`. `signature_def`: the SignatureDef as text, for the errors that print it."""
    outputs = {info.name for info in signature.outputs}
    if len(signature.inputs) != 1:
        raise InvalidInput("Expected one input Tensor.")
    if len(outputs) not in (1, 2):
        raise InvalidInput(f"Expected one or two output Tensors, found {len(outputs)}")
    _check_input(signature, "classification", signature_def)
    if not outputs & {CLASSES, SCORES}:
        raise InvalidInput(
            f'Expected classification signature outputs to contain at least one of "{CLASSES}" or '
            f'"{SCORES}". Signature was: {signature_def()}'
        )


def check_regression(signature: Signature, signature_def: Callable[[], str]) -> None:
    """TF Serving's PreProcessRegression: one input `inputs`, one output `outputs`."""
    if len(signature.inputs) != 1:
        raise InvalidInput("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise InvalidInput("Expected one output Tensor.")
    _check_input(signature, "regression", signature_def)
    if signature.outputs[0].name != OUTPUTS:
        raise InvalidInput(f"No regression outputs found in SignatureDef: {signature_def()}")


def _check_input(signature: Signature, kind: str, signature_def: Callable[[], str]) -> None:
    info = signature.inputs[0]
    if info.name != INPUTS:
        raise InvalidInput(f"No {kind} inputs found in SignatureDef: {signature_def()}")
    if info.dtype != "string":
        # TF Serving feeds the examples whatever the input's type, and the session refuses them.
        raise InvalidInput(
            f"signature {signature.name!r} takes {INPUTS!r} as {info.dtype}, not the string tensor of "
            "serialized tf.Examples that :classify and :regress feed it"
        )


def classification_results(outputs: dict[str, np.ndarray], examples: int) -> list[list[list]]:
    """Each example's classes as [label, score] pairs (TF Serving's PostProcessClassificationResult:
    a label is "" without `classes`, a score 0 without `scores`)."""
    classes, scores = outputs.get(CLASSES), outputs.get(SCORES)
    for name, array, dtype, dtype_name in (
        (CLASSES, classes, "O", "DT_STRING"),
        (SCORES, scores, "f", "DT_FLOAT"),
    ):
        if array is None:
            continue
        if array.ndim != 2:
            raise InvalidInput(f"Expected Tensor shape: [batch_size num_classes] but got {_shape(array)}")
        if array.dtype.kind != dtype or (dtype == "f" and array.dtype != np.float32):
            raise InvalidInput(f"Expected {name} Tensor of {dtype_name}. Got: {_dtype_name(array)}")
        if len(array) != examples:
            raise InvalidInput(f"Expected {name} output batch size of {examples}. Got: {len(array)}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise InvalidInput(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    count = (classes if classes is not None else scores).shape[1]
    labels = [[""] * count] * examples if classes is None else _labels(classes)
    values = np.zeros((examples, count), np.float32) if scores is None else scores
    return [
        [[label, score] for label, score in zip(row_labels, row_scores, strict=True)]
        for row_labels, row_scores in zip(labels, values, strict=True)
    ]


def regression_results(outputs: dict[str, np.ndarray], examples: int) -> np.ndarray:
    """Each example's value (TF Serving's PostProcessRegressionResult)."""
    array = outputs[OUTPUTS]
    if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
        raise InvalidInput(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{_shape(array)}"
        )
    if len(array) != examples:
        raise InvalidInput(f"Input batch size did not match output batch size: {examples} vs. {len(array)}")
    if array.dtype != np.float32:
        raise InvalidInput(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_name(array)}")
    return array.reshape(-1)


def _labels(classes: np.ndarray) -> list[list[str]]:
    return [
        [label.decode(errors="replace") if isinstance(label, bytes) else str(label) for label in row]
        for row in classes.tolist()
    ]


def _shape(array: np.ndarray) -> str:
    """A shape as TensorFlow's TensorShape::DebugString writes it: [2,3]."""
    return "[" + ",".join(str(size) for size in array.shape) + "]"


def _dtype_name(array: np.ndarray) -> str:
    """The DataType enum name of an output: DT_INT64, DT_STRING..."""
    return "DT_STRING" if array.dtype.kind in "OSU" else f"DT_{array.dtype.name.upper()}"
