"""MLflow models (a folder with an `MLmodel` file), loaded with `mlflow.pyfunc`, served as MLServer's
mlflow runtime serves them: KServe's `modelFormat: mlflow`.

The model's signature decides how a V2 request is read, as in MLServer: a column-based signature reads
the inputs as the columns of a table (`pd`), a tensor-based one with named inputs as a dict of arrays
by name (`dict`), one without names its first input as an array (`np`); the signature's inputs and
outputs are the model's V2 metadata, each input with the content type it is read by. A request's own
`content_type` wins. The request's other parameters are the model's `params` (MLflow's inference
parameters) when its signature declares them. An answer is encoded by what the model returned: a
DataFrame as one output per column, a dict of arrays as one output per key, anything else as
`output-1`, as MLServer's codecs encode them.

Where it differs from MLServer: a model without a signature, asked without a `content_type`, is given
its one input as an array (or its inputs as a dict of arrays by name), where MLServer hands the model
the request object itself, which no MLflow model takes. V1 requests are served too (MLServer has
none): `instances` as rows of the signature's columns, or as objects.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from modelplane.protocol.errors import InferenceError, InvalidInput
from modelplane.protocol.v2 import InferOutput, InferRequest, InferResponse, output_from_array
from modelplane.runtimes.base import INLINE_ELEMENTS, ModelMissingError, element_count, require, v1_instances
from modelplane.runtimes.content_types import decode_input, decode_request, input_content_type, numpy_output
from modelplane.runtimes.detect import MLMODEL_FILE
from modelplane.server.model import Model
from modelplane.server.request_batching import BatchSettings

logger = logging.getLogger(__name__)

DICT = "dict"  # MLServer's TensorDictCodec: the inputs as a dict of arrays, by name
# MLflow's column types: their V2 datatype and the content type MLServer reads them by.
_COLUMN_TYPES = {
    "boolean": ("BOOL", "np"),
    "integer": ("INT32", "np"),
    "long": ("INT64", "np"),
    "float": ("FP32", "np"),
    "double": ("FP64", "np"),
    "string": ("BYTES", "str"),
    "binary": ("BYTES", "base64"),
    "datetime": ("BYTES", "datetime"),
}
_NUMPY_TO_V2 = {
    "bool": "BOOL", "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64",
}  # fmt: skip
# What MLflow's schema check says went wrong, after the data and schema it repeats.
_SCHEMA_ERROR = re.compile(r"Error: (?P<why>.*)", re.DOTALL)


class MLflowModel(Model):
    reads_input_parameters = frozenset({"content_type"})
    platform = "mlflow"

    def __init__(self, name: str, model_dir: str | Path, max_batch_rows: int | None = None):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        if max_batch_rows is not None:  # a pyfunc model need not answer row by row
            logger.warning(
                "model %s: --max-batch-rows does not apply to MLflow models; each request is run alone", name
            )
        # The request parameters read: `content_type`, and the params the signature declares.
        self.reads_parameters = frozenset({"content_type"})
        # Set from the signature when the model loads; before that, from a model-settings.json.
        self.input_types: list[dict] = []
        self.output_types: list[dict] = []
        self.default_content_type: str | None = None
        self.input_content_types: dict[str, str] = {}
        # model-settings.json's max_batch_size and max_batch_time (MLServer's adaptive batching).
        self.adaptive_batching: BatchSettings | None = None
        self._columns: list[str] | None = None  # a column-based signature's input names
        self.pyfunc: Any = None

    def load(self) -> bool:
        require("mlflow", "mlflow")
        import mlflow.pyfunc

        if not (self.model_dir / MLMODEL_FILE).is_file():
            raise ModelMissingError(f"no {MLMODEL_FILE} file in {self.model_dir}: it holds no MLflow model")
        self.pyfunc = mlflow.pyfunc.load_model(str(self.model_dir))
        signature = self.pyfunc.metadata.signature
        if signature is not None:
            self._read_signature(signature)
        self.ready = True
        return True

    def _read_signature(self, signature: Any) -> None:
        if self.input_types or self.output_types or self.default_content_type:
            logger.warning(
                "model %s: its MLflow signature gives its inputs, outputs and content type, in place of "
                "model-settings.json's (as in MLServer)",
                self.name,
            )
        inputs = signature.inputs
        self.input_types = _schema_tensors(inputs, "input-")
        self.output_types = _schema_tensors(signature.outputs, "output-") if signature.outputs else []
        if inputs.is_tensor_spec():
            self.default_content_type = DICT if inputs.has_input_names() else "np"
        else:
            self.default_content_type = "pd"
            self._columns = inputs.input_names() if inputs.has_input_names() else None
        self.input_content_types = {
            tensor["name"]: tensor["parameters"]["content_type"]
            for tensor in self.input_types
            if tensor["parameters"]["content_type"] != "pd_json"
        }
        if signature.params is not None:
            self.reads_parameters = frozenset({"content_type", *(param.name for param in signature.params)})

    def get_input_types(self) -> list[dict]:
        return self.input_types

    def get_output_types(self) -> list[dict]:
        return self.output_types

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            result = await self._run(self._v2_data(payload), self._params(payload))
            outputs, content_type = _encoded(result)
            return InferResponse(payload.id, self.name, outputs, parameters={"content_type": content_type})
        result = await self._run(self._v1_data(payload), None)
        return {"predictions": _v1_predictions(result)}

    def _v2_data(self, request: InferRequest) -> Any:
        content_type = request.content_type or self.default_content_type
        if content_type == DICT or (content_type is None and len(request.inputs) > 1):
            decoded = {}
            for tensor in request.inputs:
                own = input_content_type(tensor, self.input_content_types)
                decoded[tensor.name] = decode_input(tensor, own) if own else tensor.as_numpy()
            return decoded
        return decode_request(request, content_type, self.input_content_types)

    def _v1_data(self, payload: Any) -> Any:
        data = v1_instances(payload)
        if self._columns is None or not isinstance(data, np.ndarray):
            return data
        if data.ndim != 2 or data.shape[1] != len(self._columns):
            raise InvalidInput(
                f"the input does not fit model {self.name}: its rows are the columns "
                f"{', '.join(self._columns)}, got instances of shape {list(data.shape)}"
            )
        import pandas

        return pandas.DataFrame(data, columns=self._columns)

    def _params(self, request: InferRequest) -> dict | None:
        params = {
            key: value for key, value in (request.parameters or {}).items() if key in self.reads_parameters
        }
        params.pop("content_type", None)
        return params or None

    async def _run(self, data: Any, params: dict | None) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            if element_count(data) <= INLINE_ELEMENTS:
                return self.pyfunc.predict(data, params=params)
            return await asyncio.to_thread(self.pyfunc.predict, data, params)
        except MlflowException as exc:
            if exc.error_code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
                raise InvalidInput(
                    f"the input does not fit model {self.name}: {_schema_error(exc)}"
                ) from None
            raise InferenceError(f"model {self.name} failed: {exc.message}") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidInput(f"the input does not fit model {self.name}: {exc}") from None


def _schema_tensors(schema: Any, prefix: str) -> list[dict]:
    """A signature's inputs (or outputs) as V2 metadata, as MLServer gives them: unnamed ones as
    `<prefix><index>`, a column of any length as `[-1, 1]`."""
    tensors = []
    for index, spec in enumerate(schema.inputs):
        name = spec.name or f"{prefix}{index}"
        if hasattr(spec, "shape"):  # a TensorSpec
            datatype = _NUMPY_TO_V2.get(np.dtype(spec.type).name, "BYTES")
            tensors.append(_tensor(name, datatype, list(spec.shape), "np"))
            continue
        datatype, content_type = _COLUMN_TYPES.get(getattr(spec.type, "name", ""), ("BYTES", "pd_json"))
        tensors.append(_tensor(name, datatype, [-1, 1], content_type))
    return tensors


def _tensor(name: str, datatype: str, shape: list[int], content_type: str) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape, "parameters": {"content_type": content_type}}


def _encoded(result: Any) -> tuple[list[InferOutput], str]:
    """A model's answer as MLServer encodes it, and the content type that says how."""
    if type(result).__name__ == "DataFrame":
        return [_column_output(str(name), result[name]) for name in result.columns], "pd"
    if type(result).__name__ == "Series":
        return [_column_output(str(result.name or "output-1"), result)], "pd"
    if isinstance(result, dict) and result and all(isinstance(v, np.ndarray) for v in result.values()):
        return [numpy_output(str(name), value) for name, value in result.items()], DICT
    if isinstance(result, list) and result and all(isinstance(value, str) for value in result):
        output = output_from_array("output-1", np.array(result, dtype=np.object_).reshape(-1, 1))
        output.parameters = {"content_type": "str"}
        return [output], "str"
    return [numpy_output("output-1", result)], "np"


def _column_output(name: str, column: Any) -> InferOutput:
    values = column.to_numpy()
    if values.dtype == np.object_ and all(isinstance(value, str) for value in values):
        output = output_from_array(name, values.reshape(-1, 1))
        output.parameters = {"content_type": "str"}
        return output
    return output_from_array(name, values.reshape(-1, 1))


def _v1_predictions(result: Any) -> Any:
    if type(result).__name__ == "DataFrame":
        return result.to_dict(orient="records")
    if isinstance(result, dict):
        return {name: np.asarray(value).tolist() for name, value in result.items()}
    return np.asarray(result).tolist() if not isinstance(result, list) else result


def _schema_error(exc: Any) -> str:
    """MLflow's schema error without the data and schema it repeats in full."""
    match = _SCHEMA_ERROR.search(exc.message)
    return (match.group("why") if match else exc.message).strip()
