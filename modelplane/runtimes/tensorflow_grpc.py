"""TF Serving's gRPC API (KServe's `grpc-v1`) for the tensorflow runtime, on the gRPC port beside V2:
`tensorflow.serving.PredictionService` Predict, Classify, Regress, MultiInference and GetModelMetadata,
and `tensorflow.serving.ModelService/GetModelStatus`.

A Predict call becomes a V2 request of the TensorFlow model (its `signature_name` parameter, its
inputs by name), so it is checked against the signature, batched, timed and traced as V2 requests are;
Classify and Regress run the model's classify and regress, as REST's :classify and :regress do;
MultiInference runs each of its tasks so, on the one input, after checking the tasks as TF Serving
does (one model, each signature once, classify or regress). They also answer for any other model that
serves those verbs from REST's JSON (a transformer, which passes them on to its predictor; a model with
`example_verbs`): the tf.Example input becomes that JSON request, and the stage's `results` the answer.
The messages are those of the `tensorflow-serving-api` package. Reading them imports TensorFlow, so a
call is only read once the server holds a ready model that can answer it (a TensorFlow model, or for
Classify, Regress and MultiInference one that serves those verbs): a server of other models answers
without importing it.
"""

from __future__ import annotations

import asyncio
import importlib.util
from types import ModuleType
from typing import Any, NamedTuple

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from modelplane.protocol.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    NotImplementedByModel,
    ServerNotReady,
)
from modelplane.protocol.grpc.wire import GrpcStatus, Metadata, UnaryMethod
from modelplane.protocol.v2 import InferInput, InferRequest, RequestedOutput
from modelplane.runtimes.base import INLINE_ELEMENTS
from modelplane.runtimes.tensorflow import TensorFlowModel
from modelplane.runtimes.tensorflow_examples import (
    CLASSIFY,
    REGRESS,
    VERBS,
    input_proto_as_json,
    read_input_proto,
)
from modelplane.runtimes.tensorflow_signature import DEFAULT_SIGNATURE, Signature, v2_datatype
from modelplane.server.dataplane import DataPlane
from modelplane.server.repository import ServedModel
from modelplane.server.responses import as_infer_response

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
PREDICT = f"/{PREDICTION_SERVICE}/Predict"

NOT_SERVED = {
    f"/{MODEL_SERVICE}/HandleReloadConfigRequest": (
        "modelplane does not serve TF Serving's HandleReloadConfigRequest: load and unload models with "
        "V2's repository API (inference.GRPCInferenceService/RepositoryModelLoad) or TrainedModels"
    ),
}
_NEEDS_PACKAGE = (
    "TF Serving's gRPC API needs the tensorflow-serving-api package of this TensorFlow's release, "
    'installed without its dependencies: pip install --no-deps "tensorflow-serving-api==<major.minor>.*"'
)
# TF Serving's AsProtoField: the repeated field each dtype's values go in (TF Serving answers that way,
# and clients read `outputs[...].float_val`).
_VALUE_FIELDS = {
    "float32": "float_val",
    "float64": "double_val",
    "int8": "int_val",
    "int16": "int_val",
    "int32": "int_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "int64": "int64_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
    "bool": "bool_val",
    "string": "string_val",
    "float16": "half_val",
    "bfloat16": "half_val",
    "complex64": "scomplex_val",
    "complex128": "dcomplex_val",
}


def served(dataplane: DataPlane) -> tuple[dict[str, UnaryMethod], dict[str, str]]:
    """The methods of TF Serving's API, and why the others are not served (all of them, with why,
    where the tensorflow-serving-api package is not installed)."""
    servicer = TFServingServicer(dataplane)
    methods = {
        PREDICT: UnaryMethod(_Unread, servicer.predict),
        f"/{PREDICTION_SERVICE}/Classify": UnaryMethod(_Unread, servicer.classify),
        f"/{PREDICTION_SERVICE}/Regress": UnaryMethod(_Unread, servicer.regress),
        f"/{PREDICTION_SERVICE}/MultiInference": UnaryMethod(_Unread, servicer.multi_inference),
        f"/{PREDICTION_SERVICE}/GetModelMetadata": UnaryMethod(_Unread, servicer.get_model_metadata),
        f"/{MODEL_SERVICE}/GetModelStatus": UnaryMethod(_Unread, servicer.get_model_status),
    }
    if importlib.util.find_spec("tensorflow_serving") is None:
        return {}, {**NOT_SERVED, **dict.fromkeys(methods, _NEEDS_PACKAGE)}
    return methods, NOT_SERVED


class _Unread(bytes):
    """A request message as it came, read by the method once it knows TensorFlow is there."""

    @classmethod
    def FromString(cls, data: bytes) -> bytes:  # noqa: N802 - protobuf's name
        return data


class TFServingServicer:
    def __init__(self, dataplane: DataPlane):
        self.dataplane = dataplane

    async def predict(self, raw: bytes, metadata: Metadata) -> Any:
        apis = self._apis()
        message = _read(apis.predict_pb2.PredictRequest, raw)
        with self.dataplane.grpc_call(message.model_spec.name):
            return await self._predict(apis, message, metadata)

    async def _predict(self, apis: ModuleType, message: Any, metadata: Metadata) -> Any:
        served, model = self._model(message.model_spec)
        signature = model.signature(message.model_spec.signature_name or None)
        outputs = _output_filter(signature, message.output_filter)
        inputs = await _off_the_loop_if_large(_request_inputs, message.inputs)
        signature.pair_by_name(inputs)  # TF Serving matches every input by its name
        request = InferRequest(
            model.name,
            inputs,
            parameters={"signature_name": signature.name},
            request_outputs=[RequestedOutput(name) for name in outputs] if outputs else None,
            from_grpc=True,
        )
        result, _ = await self.dataplane.run(served, request, metadata)
        arrays = {
            output.name: output.as_numpy()
            for output in as_infer_response(result, request, model).outputs
            if not outputs or output.name in outputs
        }
        response = apis.predict_pb2.PredictResponse(model_spec=_spec(apis, model, signature.name))
        for name, proto in (await _off_the_loop_if_large(_tensor_protos, arrays)).items():
            response.outputs[name].CopyFrom(proto)
        return response

    async def classify(self, raw: bytes, metadata: Metadata) -> Any:
        apis = self._apis(CLASSIFY)
        message = _read(apis.classification_pb2.ClassificationRequest, raw)
        with self.dataplane.grpc_call(message.model_spec.name):
            spec, results = await self._examples(apis, message, metadata, CLASSIFY)
            response = apis.classification_pb2.ClassificationResponse(model_spec=spec)
            _add_classifications(response.result, results)
            return response

    async def regress(self, raw: bytes, metadata: Metadata) -> Any:
        apis = self._apis(REGRESS)
        message = _read(apis.regression_pb2.RegressionRequest, raw)
        with self.dataplane.grpc_call(message.model_spec.name):
            spec, results = await self._examples(apis, message, metadata, REGRESS)
            response = apis.regression_pb2.RegressionResponse(model_spec=spec)
            _add_regressions(response.result, results)
            return response

    async def multi_inference(self, raw: bytes, metadata: Metadata) -> Any:
        apis = self._apis(*VERBS)
        message = _read(apis.inference_pb2.MultiInferenceRequest, raw)
        verbs = _task_verbs(message.tasks)
        with self.dataplane.grpc_call(message.tasks[0].model_spec.name):
            response = apis.inference_pb2.MultiInferenceResponse()
            for task, verb in zip(message.tasks, verbs, strict=True):
                task_message = _TaskMessage(task.model_spec, message.input)
                spec, results = await self._examples(apis, task_message, metadata, verb)
                answer = response.results.add(model_spec=spec)
                if verb == CLASSIFY:
                    _add_classifications(answer.classification_result, results)
                else:
                    _add_regressions(answer.regression_result, results)
            return response

    async def _examples(
        self, apis: ModuleType, message: Any, metadata: Metadata, verb: str
    ) -> tuple[Any, Any]:
        """The ModelSpec to answer a Classify or Regress call (or a MultiInference task) with, and the
        model's results."""
        served, model = self._model(message.model_spec, verb)
        signature_name = message.model_spec.signature_name
        spec = _spec(apis, model, signature_name or DEFAULT_SIGNATURE)
        if isinstance(model, TensorFlowModel):
            batch = read_input_proto(signature_name, message.input)
            result, _ = await self.dataplane.run(served, batch, metadata, verb)
            return spec, result["results"]
        payload = input_proto_as_json(signature_name, message.input)
        result, _ = await self.dataplane.run(served, payload, metadata, verb)
        return spec, _json_results(result, verb)

    async def get_model_metadata(self, raw: bytes, metadata: Metadata) -> Any:
        apis = self._apis()
        message = _read(apis.get_model_metadata_pb2.GetModelMetadataRequest, raw)
        if list(message.metadata_field) != ["signature_def"]:
            fields = ", ".join(map(repr, message.metadata_field)) or "none"
            raise InvalidInput(
                f'metadata_field must be ["signature_def"], the one field served; it is {fields}'
            )
        _, model = self._model(message.model_spec)
        from google.protobuf import json_format

        signatures = json_format.ParseDict(
            model.v1_metadata()["metadata"]["signature_def"], apis.get_model_metadata_pb2.SignatureDefMap()
        )
        response = apis.get_model_metadata_pb2.GetModelMetadataResponse(model_spec=_spec(apis, model))
        response.metadata["signature_def"].Pack(signatures)
        return response

    async def get_model_status(self, raw: bytes, metadata: Metadata) -> Any:
        apis = self._apis()
        message = _read(apis.get_model_status_pb2.GetModelStatusRequest, raw)
        _, model = self._model(message.model_spec)
        status = apis.get_model_status_pb2.ModelVersionStatus(
            state=apis.get_model_status_pb2.ModelVersionStatus.AVAILABLE
        )
        if _numbered(model.version):
            status.version = int(model.version)
        return apis.get_model_status_pb2.GetModelStatusResponse(model_version_status=[status])

    def _apis(self, *verbs: str) -> ModuleType:
        """The tensorflow_serving.apis package, once a TensorFlow model is ready (so TensorFlow is
        imported already, and importing the messages, which import it, costs nothing), or one that
        serves one of `verbs` (which the call needs TensorFlow's messages for all the same)."""
        tensorflow = [
            served
            for _, served in self.dataplane.repository.items()
            if isinstance(served.model, TensorFlowModel) or any(verb in served.stages for verb in verbs)
        ]
        if not tensorflow:
            raise NotImplementedByModel(
                "TF Serving's API answers for TensorFlow SavedModels, and this server holds none: "
                "call inference.GRPCInferenceService (V2) instead"
            )
        if not any(served.model.ready for served in tensorflow):
            names = ", ".join(served.model.name for served in tensorflow)
            raise ServerNotReady(f"no TensorFlow model is ready yet (not ready: {names})")
        from tensorflow_serving import apis
        from tensorflow_serving.apis import (  # noqa: F401 - attributes of `apis` from now on
            classification_pb2,
            get_model_metadata_pb2,
            get_model_status_pb2,
            inference_pb2,
            model_pb2,
            predict_pb2,
            regression_pb2,
        )

        return apis

    def _model(self, spec: Any, verb: str | None = None) -> tuple[ServedModel, Any]:
        """The ready TensorFlow model a ModelSpec names (with its version, if it gives one), or any
        model that serves `verb`."""
        if not spec.name:
            raise InvalidInput("model_spec.name is required")
        if spec.WhichOneof("version_choice") == "version_label":
            raise ModelNotFound(
                spec.name,
                f"Model {spec.name} has no version label {spec.version_label!r}: modelplane serves none",
            )
        version = str(spec.version.value) if spec.HasField("version") else None
        served = self.dataplane.resolve(spec.name, version)
        if not isinstance(served.model, TensorFlowModel) and verb not in served.stages:
            platform = getattr(served.model, "platform", "") or type(served.model).__name__
            raise NotImplementedByModel(
                f"model {spec.name} is not a TensorFlow SavedModel ({platform}): TF Serving's API serves "
                "those only; call it with inference.GRPCInferenceService/ModelInfer (V2)"
            )
        return served, served.model


class _TaskMessage(NamedTuple):
    """A MultiInference task as the Classify or Regress request it stands for."""

    model_spec: Any
    input: Any


_TASK_VERBS = {"tensorflow/serving/classify": CLASSIFY, "tensorflow/serving/regress": REGRESS}


def _task_verbs(tasks: Any) -> list[str]:
    """Each task's verb, once the tasks are checked as TF Serving checks them, in its words: at
    least one, all of one model, no signature twice, each a classification or a regression."""
    if not tasks:
        raise InvalidInput("Expected at least one task")
    model_name, signatures, verbs = None, set(), []
    for task in tasks:
        if not task.model_spec.name:
            raise InvalidInput("Found ModelSpec with an empty model name.")
        if model_name is None:
            model_name = task.model_spec.name
        elif task.model_spec.name != model_name:
            raise InvalidInput("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        signature = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature in signatures:
            raise InvalidInput(f"Duplicate evaluation of signature: {signature}")
        signatures.add(signature)
        verb = _TASK_VERBS.get(task.method_name)
        if verb is None:
            raise GrpcStatus(
                grpc.StatusCode.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}"
            )
        verbs.append(verb)
    return verbs


def _json_results(result: Any, verb: str) -> Any:
    """The `results` of a model's answer in REST's JSON (`{"results": [[[label, score], ...], ...]}`,
    `{"results": [value, ...]}`), checked to fit the gRPC answer; its other keys have no place there."""
    rows = result.get("results") if isinstance(result, dict) else None
    if isinstance(rows, list):
        if verb == REGRESS and all(_number(value) for value in rows):
            return np.asarray(rows, dtype=np.float64)
        if verb == CLASSIFY and all(isinstance(row, list) and all(map(_class_pair, row)) for row in rows):
            return rows
    shape = "[[[label, score], ...], ...]" if verb == CLASSIFY else "[value, ...]"
    raise InferenceError(
        f'the model answered :{verb} without {{"results": {shape}}}, which the gRPC answer carries'
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _class_pair(pair: Any) -> bool:
    return isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str) and _number(pair[1])


def _add_classifications(result: Any, rows: list) -> None:
    for row in rows:
        classes = result.classifications.add().classes
        for label, score in row:
            classes.add(label=label, score=score)


def _add_regressions(result: Any, values: Any) -> None:
    for value in values.tolist():
        result.regressions.add(value=value)


def _read(message_class: type, raw: bytes) -> Any:
    try:
        return message_class.FromString(raw)
    except DecodeError as exc:
        raise GrpcStatus(
            grpc.StatusCode.INVALID_ARGUMENT, f"the request message cannot be parsed: {exc}"
        ) from None


def _spec(apis: ModuleType, model: Any, signature_name: str = "") -> Any:
    spec = apis.model_pb2.ModelSpec(name=model.name, signature_name=signature_name)
    version = getattr(model, "version", None)
    if _numbered(version):
        spec.version.value = int(version)
    return spec


def _numbered(version: str | None) -> bool:
    """Whether a version fits TF Serving's (an int64); one --model-version names may not."""
    return version is not None and version.isdigit() and int(version) < 2**63


def _output_filter(signature: Signature, names: Any) -> list[str]:
    known = {info.name for info in signature.outputs}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InvalidInput(
            f"signature {signature.name!r} has no output named {', '.join(map(repr, unknown))}; "
            f"its outputs are: {', '.join(sorted(known))}"
        )
    if len(set(names)) != len(names):
        raise InvalidInput(f"output_filter names an output twice: {', '.join(names)}")
    return list(names)


async def _off_the_loop_if_large(convert: Any, tensors: Any) -> Any:
    """`convert(tensors)`, on a worker thread when they are large (as a large prediction runs)."""
    if sum(_element_count(tensor) for tensor in tensors.values()) <= INLINE_ELEMENTS:
        return convert(tensors)
    return await asyncio.to_thread(convert, tensors)


def _element_count(tensor: Any) -> int:
    if isinstance(tensor, np.ndarray):
        return tensor.size
    return int(np.prod([dim.size for dim in tensor.tensor_shape.dim], dtype=np.int64))


def _request_inputs(protos: Any) -> list[InferInput]:
    """The TensorProtos of a Predict request as V2 inputs (TensorFlow's own dtype names, as V2's)."""
    import tensorflow as tf

    inputs = []
    for name, proto in sorted(protos.items()):
        try:
            dtype = tf.dtypes.as_dtype(proto.dtype).name
            array = tf.make_ndarray(proto)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"input {name!r} is not a tensor TensorFlow can read: {exc}") from None
        inputs.append(InferInput(name, array.shape, v2_datatype(dtype), array))
    return inputs


def _tensor_protos(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Each output as TF Serving writes it: its values in the repeated field of its dtype."""
    import tensorflow as tf
    from tensorflow.core.framework.tensor_pb2 import TensorProto

    protos = {}
    for name, array in arrays.items():
        dtype = tf.dtypes.as_dtype(array.dtype)
        field = _VALUE_FIELDS.get(dtype.name)
        if field is None:
            raise InferenceError(f"output {name!r} is {dtype.name}, which TF Serving's answer cannot carry")
        proto = TensorProto(dtype=dtype.as_datatype_enum, tensor_shape=tf.TensorShape(array.shape).as_proto())
        flat = array.ravel()
        if dtype.name in ("float16", "bfloat16"):
            flat = flat.view(np.uint16)
        elif dtype.is_complex:
            flat = np.stack([flat.real, flat.imag], axis=-1).ravel()
        getattr(proto, field).extend(flat.tolist())
        protos[name] = proto
    return protos
