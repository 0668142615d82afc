"""What the built-in runtimes share: finding the model file, shaping inputs and outputs, and
running the library call without stalling the event loop."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelplane.protocol.errors import InferenceError, InvalidInput
from modelplane.protocol.v2 import InferRequest, InferResponse, output_from_array
from modelplane.runtimes.coalesce import Coalescer
from modelplane.runtimes.content_types import UnknownContentTypes, decode_request, numpy_output
from modelplane.runtimes.model_settings import SETTINGS_FILE
from modelplane.server.model import Model
from modelplane.server.request_batching import BatchSettings

# Below this many input elements a prediction is cheaper than a hop to a worker thread, so it runs
# on the event loop; larger batches go to a thread and the loop keeps serving.
INLINE_ELEMENTS = 4096
# Requests waiting at the same moment are predicted together, up to this many rows (see coalesce.py).
DEFAULT_MAX_BATCH_ROWS = 64


class ModelMissingError(Exception):
    """No model file in the model folder."""


def require(module: str, extra: str):
    """Import a runtime's library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the {extra} runtime needs the '{module}' package: pip install \"modelplane[{extra}]\" ({exc})"
        ) from None


def warn_if_batch_rows_given(model_name: str, library: str, max_batch_rows: int | None) -> None:
    """`--max-batch-rows`, given to a runtime whose models run each request alone."""
    if max_batch_rows is not None:
        logging.getLogger("modelplane.server").warning(
            "model %s: --max-batch-rows does not apply to %s models; each request is run alone",
            model_name,
            library,
        )


def find_model_file(
    model_dir: str | Path,
    extensions: tuple[str, ...],
    is_model: Callable[[Path], bool] = lambda path: True,
) -> Path:
    """The single top-level file in `model_dir` with one of `extensions` (and, in a folder, that
    `is_model` accepts; MLServer's model-settings.json is never the model); a file path is used as is."""
    path = Path(model_dir)
    if path.is_file():
        if not path.name.endswith(extensions):
            raise ModelMissingError(f"{path} is not a model file ({', '.join(extensions)})")
        return path
    if not path.is_dir():
        raise ModelMissingError(f"model folder {path} does not exist")
    candidates = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and p.name.endswith(extensions) and p.name != SETTINGS_FILE and is_model(p)
    )
    if not candidates:
        raise ModelMissingError(f"no model file ({', '.join(extensions)}) found in {path}")
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise RuntimeError(
            f"More than one model file is detected, Only one is allowed within model_dir: {names}"
        )
    return candidates[0]


def v1_instance_list(payload: Any) -> list:
    """The `instances` of a V1 request, or its `inputs`, which KServe reads first when it has both."""
    if not isinstance(payload, dict):
        raise InvalidInput('a V1 request must be a JSON object with "instances"')
    instances = payload["inputs"] if "inputs" in payload else payload.get("instances")
    if instances is None:
        raise InvalidInput('the request has no "instances"')
    if not isinstance(instances, list):
        raise InvalidInput('Expected "instances" to be a list')
    return instances


def v1_instances(payload: Any) -> Any:
    """The `instances` (or `inputs`) of a V1 request as an array, or a DataFrame for records."""
    if (
        isinstance(payload, dict)
        and "inputs" not in payload
        and isinstance(payload.get("instances"), np.ndarray)
    ):
        return payload["instances"]  # a large body's, read as an array (protocol/lean_json.py)
    instances = v1_instance_list(payload)
    if instances and _is_object(instances[0]):
        return _objects_frame(instances)
    try:
        return np.asarray(instances)
    except ValueError as exc:
        raise InvalidInput(f"instances do not form a regular array: {exc}") from None


def _is_object(instance: Any) -> bool:
    """An instance given as an object, or as a list of objects (KServe's records form)."""
    return isinstance(instance, dict) or (
        isinstance(instance, list) and bool(instance) and isinstance(instance[0], dict)
    )


def _objects_frame(instances: list):
    """The DataFrame of instances given as objects. An object of plain values is one row; an object of
    lists or of {index: value} objects is a set of columns, and a list of objects a set of rows: the
    forms KServe's servers read (each instance through `pandas.DataFrame`)."""
    try:
        import pandas
    except ImportError:
        raise InvalidInput(
            "instances given as objects need pandas on the server to be matched to the model's features "
            '(pip install "modelplane[pandas]"); send each instance as a list of its values in the '
            'order the model was trained on instead, e.g. {"instances": [[5.1, 3.5, 1.4, 0.2]]}'
        ) from None
    if not all(_is_object(instance) for instance in instances):
        raise InvalidInput("instances must be all objects or all lists, not a mix")
    if not all(
        isinstance(row, dict) for instance in instances if isinstance(instance, list) for row in instance
    ):
        raise InvalidInput("an instance that is a list of row objects must hold nothing but objects")
    if all(_is_row(instance) for instance in instances):
        return pandas.DataFrame.from_records(instances)
    try:
        frames = [_instance_frame(pandas, instance) for instance in instances]
    except ValueError as exc:
        raise InvalidInput(f"instances do not form a table: {exc}") from None
    return pandas.concat(frames, ignore_index=True)


def _is_row(instance: Any) -> bool:
    return isinstance(instance, dict) and not any(
        isinstance(value, (list, dict)) for value in instance.values()
    )


def _instance_frame(pandas: Any, instance: dict | list):
    if _is_row(instance):
        return pandas.DataFrame([instance])
    return pandas.DataFrame(instance)


def element_count(data: Any) -> int:
    size = getattr(data, "size", None)
    return size if isinstance(size, int) else len(data)


class TabularModel(Model):
    """A model taking a 2-D batch of rows and answering one prediction per row."""

    extensions: tuple[str, ...] = ()
    # `content_type`, of the request and of its inputs: how they are read (content_types.py).
    reads_parameters = frozenset({"content_type"})
    reads_input_parameters = frozenset({"content_type"})
    # Whether the model picks a table's columns by their names (so a table may have more of them).
    selects_columns_by_name = False
    reads_v1_instances_as_array = True
    platform = ""

    def __init__(self, name: str, model_dir: str | Path, max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.max_batch_rows = max_batch_rows
        self._coalescer: Coalescer | None = None
        # The features a row must have, where the model's library would not check it itself (set by
        # `load`): a booster given fewer features answers nonsense, or fails as if it were at fault.
        self.features: int | None = None
        # What an MLServer model-settings.json declares (model_settings.py): V2 metadata and the
        # content_type of requests and of inputs that do not give their own.
        self.input_types: list[dict] = []
        self.output_types: list[dict] = []
        self.default_content_type: str | None = None
        self.input_content_types: dict[str, str] = {}
        self._unknown_content_types = UnknownContentTypes(self)
        # How V2 answers are named and shaped: "kserve", one `output-0` (KServe's sklearnserver,
        # xgbserver and lgbserver); "mlserver", outputs named after what answers them (`predict`,
        # `predict_proba`), as MLServer's runtimes answer.
        self.v2_outputs = "kserve"
        # The server's batcher for this model alone (model-settings.json's max_batch_size and
        # max_batch_time, MLServer's adaptive batching); None: only the server's own, if any.
        self.adaptive_batching: BatchSettings | None = None

    def get_input_types(self) -> list[dict]:
        return self.input_types

    def get_output_types(self) -> list[dict]:
        return self.output_types

    def _check_width(self, data: Any) -> None:
        if self.features is None or getattr(data, "ndim", None) != 2:
            return
        if self.selects_columns_by_name and hasattr(data, "columns"):
            return
        if data.shape[1] != self.features:
            raise InvalidInput(
                f"the input does not fit model {self.name}: it takes rows of {self.features} features, "
                f"got {data.shape[1]}"
            )

    def v2_inputs(self, request: InferRequest) -> Any:
        """The model input of a V2 request, as its content types (else the model's defaults) say."""
        return decode_request(
            request, self.default_content_type, self.input_content_types, self._unknown_content_types
        )

    def compute(self, data: Any) -> Any:
        raise NotImplementedError

    async def _compute(self, data: Any, compute: Callable[[Any], Any] | None = None) -> Any:
        """`compute` (else the model's own) over `data`, its library's errors turned into protocol errors."""
        compute = compute or self.compute
        try:
            if element_count(data) <= INLINE_ELEMENTS:
                return compute(data)
            return await asyncio.to_thread(compute, data)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InvalidInput(
                f"the input does not fit model {self.name}: {_without_stack_trace(exc)}"
            ) from None
        except InvalidInput:
            raise
        except Exception as exc:  # noqa: BLE001 - the library's own failure
            raise InferenceError(f"model {self.name} failed: {type(exc).__name__}: {exc}") from None

    async def _predict_rows(self, data: Any) -> Any:
        self._check_width(data)
        if self.max_batch_rows <= 1:
            return await self._compute(data)
        if self._coalescer is None:
            self._coalescer = Coalescer(self._compute, self.max_batch_rows)
        return await self._coalescer.submit(data)

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            if self.v2_outputs == "mlserver":
                return await self._mlserver_answer(payload)
            result = await self._predict_rows(self.v2_inputs(payload))
            return InferResponse(payload.id, self.name, [output_from_array("output-0", result)])
        result = await self._predict_rows(v1_instances(payload))
        return {"predictions": result}

    # ---- answering as MLServer's runtimes do (`v2_outputs` "mlserver") ----

    def mlserver_default_output(self) -> str:
        """The output MLServer's runtime answers when a request names none."""
        return "predict"

    def mlserver_outputs(self, requested: list[str]) -> list[str]:
        """The outputs MLServer's runtime answers a request that names `requested`."""
        return requested or [self.mlserver_default_output()]

    def mlserver_method(self, output: str) -> Callable[[Any], Any] | None:
        """What answers a requested output: None for the model's own prediction (`compute`, shared
        with requests that arrive together), else the call to make; InvalidInput, in MLServer's words,
        for an output the runtime does not answer."""
        if output == "predict":
            return None
        raise InvalidInput(f"{type(self).__name__} answers only 'predict' ({output} was received)")

    async def _mlserver_answer(self, request: InferRequest) -> InferResponse:
        names = self.mlserver_outputs([output.name for output in request.request_outputs or ()])
        methods = [self.mlserver_method(name) for name in names]
        data = self.v2_inputs(request)
        self._check_width(data)
        outputs = []
        for name, method in zip(names, methods, strict=True):
            result = await (self._predict_rows(data) if method is None else self._compute(data, method))
            outputs.append(numpy_output(name, result))
        return InferResponse(request.id, self.name, outputs)


def last_line(exc: BaseException) -> str:
    """The last line of an error's message: what went wrong, where a library puts a traceback of its own
    before it (TorchScript's interpreter does)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _without_stack_trace(exc: BaseException) -> str:
    """A library's error message without the native stack trace some append (XGBoost's)."""
    return str(exc).split("\nStack trace:", 1)[0].strip()
