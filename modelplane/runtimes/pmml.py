"""PMML models (`.pmml`), evaluated by JPMML (the `jpmml_evaluator` package) in a Java virtual machine,
as KServe's pmmlserver does.

Each row is evaluated on its own by JPMML, and every call crosses into the JVM over a socket (Py4J), so
evaluation runs on a worker thread, never on the event loop; the rows of requests that arrive together
cross in one call (`evaluateAll`) rather than one call each.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import numpy as np

from modelplane.protocol.errors import InferenceError, InvalidInput, ModelplaneError
from modelplane.protocol.v2 import InferOutput, InferRequest, InferResponse, output_from_array
from modelplane.runtimes.base import DEFAULT_MAX_BATCH_ROWS, find_model_file, require
from modelplane.runtimes.pmml_inputs import InputFields, Row
from modelplane.runtimes.pmml_java import java_backend
from modelplane.server.batching import Batcher
from modelplane.server.model import Model

# PMML data types -> V2 datatypes (model metadata, and the outputs of a batch with no values to go by).
_PMML_TO_V2 = {"double": "FP64", "float": "FP64", "integer": "INT64", "boolean": "BOOL"}
# JPMML's exceptions for values a request got wrong (a value that does not fit its field, a value the
# model needs left out, a function's argument out of its domain); any other is the model's failure.
_CLIENT_FAULTS = (
    "ValueCheckException",
    "TypeCheckException",
    "MissingFieldValueException",
    "InvalidArgumentException",
    "MissingArgumentException",
)
# The column jpmml_evaluator's evaluateAll adds for the rows that failed (when any did).
_ERRORS_COLUMN = "errors"


class RowFailed(Exception):
    """JPMML could not evaluate a row: a 400 when the row's values are at fault, else a 500."""

    def __init__(self, index: int, class_name: str, message: str):
        super().__init__(f"{class_name}: {message}")
        self.index, self.class_name, self.message = index, class_name, message

    def error(self, model_name: str, row_name: str) -> ModelplaneError:
        if self.class_name.rsplit(".", 1)[-1] in _CLIENT_FAULTS:
            return InvalidInput(f"{row_name} {self.index}: {self.message}")
        return InferenceError(f"model {model_name} failed on {row_name} {self.index}: {self}")


class PMMLModel(Model):
    extensions = (".pmml",)
    reads_parameters = frozenset()

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        nthread: int | None = None,
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    ):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.nthread = nthread  # the JVM's processor count, if this model is the one that starts it
        self.max_batch_rows = max_batch_rows
        self._evaluator: Any = None
        self._fields = InputFields(name, [])
        self._inputs: dict[str, str] = {}  # input field -> V2 datatype
        self._results: dict[str, str] = {}  # result field -> V2 datatype: targets, then outputs
        self._batcher: Batcher[Row, dict] | None = None

    def load(self) -> bool:
        jpmml = require("jpmml_evaluator", "pmml")
        path = find_model_file(self.model_dir, self.extensions)
        backend = java_backend(self.nthread)
        try:
            evaluator = jpmml.make_evaluator(path, backend).verify()
        except Exception as exc:  # noqa: BLE001 - the JVM's exception, as Py4J or jpmml_evaluator raise it
            raise ValueError(
                f"{path.name} is not a PMML model JPMML can evaluate: {_java_message(exc)}"
            ) from None
        self._inputs = {field.getName(): _datatype(field) for field in evaluator.getInputFields()}
        self._fields = InputFields(self.name, list(self._inputs))
        self._results = {
            field.getName(): _datatype(field)
            for field in [*evaluator.getTargetFields(), *evaluator.getOutputFields()]
        }
        self._evaluator = evaluator
        if self.max_batch_rows > 1:
            self._batcher = Batcher(self._evaluate_on_thread, self.max_batch_rows, max_latency=0)
        self.ready = True
        return True

    def stop(self) -> None:
        self._evaluator = None

    def get_input_types(self) -> list[dict]:
        return [
            {"name": name, "datatype": datatype, "shape": [-1]} for name, datatype in self._inputs.items()
        ]

    def get_output_types(self) -> list[dict]:
        return [
            {"name": name, "datatype": datatype, "shape": [-1]} for name, datatype in self._results.items()
        ]

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            results = await self._evaluate(self._fields.v2_rows(payload), "row")
            return InferResponse(payload.id, self.name, self._v2_outputs(results))
        return {"predictions": await self._evaluate(self._fields.v1_rows(payload), "instance")}

    async def _evaluate(self, rows: list[Row], row_name: str) -> list[dict]:
        if not rows:
            return []
        try:
            if self._batcher is None:
                return await self._evaluate_on_thread(rows)
            return await self._batcher.submit(rows)
        except RowFailed as failed:
            raise failed.error(self.name, row_name) from None

    async def _evaluate_on_thread(self, rows: list[Row]) -> list[dict]:
        return await asyncio.to_thread(self._evaluate_rows, rows)

    def _evaluate_rows(self, rows: list[Row]) -> list[dict]:
        """One result per row (result field -> value, None where missing)."""
        evaluator = self._evaluator
        if evaluator is None:
            raise InferenceError(f"model {self.name} is unloaded")
        try:
            if len(rows) == 1:
                return [_plain(evaluator.evaluate(dict(rows[0])))]
            return self._evaluate_all(evaluator, rows)
        except (ModelplaneError, RowFailed):
            raise
        except Exception as exc:  # noqa: BLE001 - the JVM's exception, or the JVM gone
            class_name = getattr(exc, "className", None)  # jpmml_evaluator's JavaError
            if class_name is None:
                raise InferenceError(f"model {self.name} failed: {type(exc).__name__}: {exc}") from None
            raise RowFailed(0, class_name, str(exc.message)) from None

    def _evaluate_all(self, evaluator: Any, rows: list[Row]) -> list[dict]:
        pandas = require("pandas", "pmml")
        frame = pandas.DataFrame({name: [row.get(name) for row in rows] for name in self._fields.names})
        results = evaluator.evaluateAll(frame)
        if _ERRORS_COLUMN in results.columns and _ERRORS_COLUMN not in self._results:
            for index, error in enumerate(results.pop(_ERRORS_COLUMN).tolist()):
                if isinstance(error, str):
                    class_name, _, message = error.partition(": ")
                    raise RowFailed(index, class_name, message)
        columns = [results[name].tolist() for name in results.columns]
        return [
            _plain(dict(zip(results.columns, values, strict=True))) for values in zip(*columns, strict=True)
        ]

    def _v2_outputs(self, results: list[dict]) -> list[InferOutput]:
        names = list(results[0]) if results else list(self._results)
        return [
            output_from_array(
                name, _column([result.get(name) for result in results], self._results.get(name))
            )
            for name in names
        ]


def _datatype(field: Any) -> str:
    return _PMML_TO_V2.get(field.getDataType(), "BYTES")


def _plain(result: dict) -> dict:
    """A result with missing values (None, NaN) as None, so that V1 answers them as null."""
    return {
        name: None if isinstance(value, float) and math.isnan(value) else value
        for name, value in result.items()
    }


def _column(values: list, declared: str | None) -> np.ndarray:
    """A result field's values as a tensor, typed by the values, as KServe types them: numbers as FP64
    (INT64 when all are whole and none is missing; a missing one is NaN), booleans as BOOL when none is
    missing, anything else as BYTES (a missing value is the empty string)."""
    present = [value for value in values if value is not None]
    kinds = {_kind(value) for value in present} or {_KIND_OF_DATATYPE.get(declared, "str")}
    complete = len(present) == len(values)
    if kinds == {"bool"} and complete:
        return np.array(values, dtype=np.bool_)
    if kinds == {"int"} and complete:
        return np.array(values, dtype=np.int64)
    if kinds <= {"int", "float"}:
        return np.array([math.nan if value is None else value for value in values], dtype=np.float64)
    return np.array(["" if value is None else str(value) for value in values], dtype=np.object_)


_KIND_OF_DATATYPE = {"FP64": "float", "INT64": "int", "BOOL": "bool"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return "float" if isinstance(value, float) else "str"


def _java_message(exc: Exception) -> str:
    """`Class: message` of the Java exception behind `exc` (Py4J's, or jpmml_evaluator's JavaError)."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        return f"{java.getClass().getName()}: {java.getMessage()}"
    return str(exc)
