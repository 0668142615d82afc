"""Resources for fuzzing, drawn from the CRD schemas themselves: what each kind requires is there, and a
few more fields of each object with values mostly of the schema's type, sometimes of another."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from modelplane.api.kinds import INFERENCE_GRAPH, INFERENCE_SERVICE, TRAINED_MODEL
from modelplane.api.schema import openapi_schema

DEPTH = 6  # objects nested deeper than this are left empty
FIELDS_PER_OBJECT = 4

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
any_json = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
# Strings that mean something somewhere in the specs, next to arbitrary ones.
meaningful = st.sampled_from(
    [
        "sklearn",
        "xgboost",
        "pytorch",
        "huggingface",
        "v1",
        "v2",
        "grpc-v2",
        "s3://bucket/model",
        "gs://b/m",
        "pvc://claim/path",
        "hf://org/model",
        "oci://registry/image:tag",
        "file:///tmp/model",
        "http://example.com/x",
        "100m",
        "1Gi",
        "2",
        "Sequence",
        "Switch",
        "Ensemble",
        "Splitter",
        "$request",
        "$response",
        "all",
        "request",
        "response",
        "cpu",
        "memory",
        "concurrency",
        "rps",
        "Knative",
        "Standard",
        "RawDeployment",
        "",
    ]
)
strings = st.one_of(meaningful, st.text(string.printable, max_size=16))
uris = st.sampled_from(["s3://bucket/model", "gs://b/m", "pvc://claim/path", "https://example.com/m.joblib"])
quantities = st.sampled_from(["1Gi", "100Mi", "1", "0", "500m"])
formats = st.sampled_from(
    ["sklearn", "xgboost", "pytorch", "tensorflow", "onnx", "huggingface", "lightgbm", "mlflow"]
)


def from_schema(schema: dict, depth: int = 0) -> st.SearchStrategy:
    """Values for `schema`: mostly of its type, one in sixteen of any type."""
    return st.integers(0, 15).flatmap(lambda draw: any_json if draw == 0 else _typed(schema, depth))


def _typed(schema: dict, depth: int) -> st.SearchStrategy:
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if schema.get("x-kubernetes-int-or-string"):
        return st.integers(-5, 200) | strings
    if kind == "array":
        items = schema.get("items") or {}
        if depth >= DEPTH:
            return st.just([])
        return st.lists(from_schema(items, depth + 1), max_size=2)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        if depth >= DEPTH:
            return st.just({})
        if properties:
            return st.lists(
                st.sampled_from(sorted(properties)), max_size=FIELDS_PER_OBJECT, unique=True
            ).flatmap(
                lambda names: st.fixed_dictionaries(
                    {name: from_schema(properties[name], depth + 1) for name in names}
                )
            )
        values = from_schema(extra, depth + 1) if isinstance(extra, dict) else any_json
        return st.dictionaries(strings, values, max_size=3)
    if kind == "integer":
        return st.integers(min_value=-10, max_value=2**40) | st.sampled_from([0, 1, 100, 2**63])
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        return strings
    return any_json


def fields(schema: dict, leave_out: tuple[str, ...] = ()) -> st.SearchStrategy:
    """A few of an object schema's fields, drawn as `from_schema` draws them."""
    properties = {k: v for k, v in (schema.get("properties") or {}).items() if k not in leave_out}
    if not properties:
        return st.just({})
    return st.lists(st.sampled_from(sorted(properties)), max_size=FIELDS_PER_OBJECT, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: from_schema(properties[name], 1) for name in names})
    )


def merged(base: st.SearchStrategy, more: st.SearchStrategy) -> st.SearchStrategy:
    """What `base` draws, with the fields `more` draws over it."""
    return st.tuples(base, more).map(lambda pair: {**pair[0], **pair[1]})


def documents(kind) -> st.SearchStrategy:
    """A spec that passes the schema's outline (what it requires is there), with fields drawn over it."""
    spec = openapi_schema(kind)["properties"]["spec"]
    parts = spec["properties"]
    if kind is INFERENCE_SERVICE:
        predictor = parts["predictor"]
        model = st.fixed_dictionaries(
            {"modelFormat": st.fixed_dictionaries({"name": meaningful}), "storageUri": strings}
        )
        model = merged(model, fields(predictor["properties"]["model"], ("modelFormat",)))
        implementations = ("model", "sklearn", "xgboost", "pytorch", "tensorflow", "onnx", "triton", "huggingface",
                           "lightgbm", "paddle", "pmml", "containers")  # fmt: skip
        predictor = merged(st.fixed_dictionaries({"model": model}), fields(predictor, implementations))
        return merged(st.fixed_dictionaries({"predictor": predictor}), fields(spec, ("predictor",)))
    if kind is INFERENCE_GRAPH:
        step = merged(
            st.fixed_dictionaries({"serviceName": meaningful}),
            fields(
                parts["nodes"]["additionalProperties"]["properties"]["steps"]["items"],
                ("serviceName", "nodeName", "serviceUrl"),
            ),
        )
        root = merged(
            st.fixed_dictionaries(
                {"routerType": meaningful, "steps": st.lists(step, min_size=1, max_size=3)}
            ),
            fields(parts["nodes"]["additionalProperties"], ("steps",)),
        )
        return merged(
            st.fixed_dictionaries({"nodes": st.fixed_dictionaries({"root": root})}), fields(spec, ("nodes",))
        )
    if kind is TRAINED_MODEL:
        model = st.fixed_dictionaries({"framework": formats, "storageUri": uris, "memory": quantities})
        model = merged(model, fields(parts["model"], ("framework", "storageUri", "memory")))
        return merged(
            st.fixed_dictionaries({"inferenceService": meaningful, "model": model}), fields(spec, ("model",))
        )
    container = st.fixed_dictionaries({"name": st.just("kserve-container"), "image": meaningful})
    supported = st.lists(
        merged(
            st.fixed_dictionaries({"name": formats}),
            fields(parts["supportedModelFormats"]["items"], ("name",)),
        ),
        min_size=1,
        max_size=2,
    )
    base = st.fixed_dictionaries(
        {"containers": st.lists(container, min_size=1, max_size=1), "supportedModelFormats": supported}
    )
    return merged(base, fields(spec, ("containers", "supportedModelFormats")))
