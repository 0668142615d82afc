"""The rows a PMML model evaluates, from V1 and V2 requests: each row a dict of input field -> value.

A field a row leaves out is a missing value, as `null` (or NaN) is: PMML models say what a missing value
means. The values are checked against the fields' types by JPMML, when the model uses them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.v2 import InferInput, InferRequest
from modelplane.runtimes.base import v1_instance_list

Row = dict[str, Any]
_SCALARS = (str, int, float, bool, type(None))


class InputFields:
    """A model's input fields, in the order V1 rows and V2 row tensors give their values."""

    def __init__(self, model_name: str, names: list[str]):
        self.model_name = model_name
        self.names = names
        self._known = set(names)

    def describe(self) -> str:
        return f"{len(self.names)} values ({', '.join(self.names)})"

    def v1_rows(self, payload: Any) -> list[Row]:
        """KServe's V1 body: `instances` (or `inputs`), each a list of values in field order or an
        object keyed by field name."""
        instances = v1_instance_list(payload)
        return [self._instance(index, instance) for index, instance in enumerate(instances)]

    def _instance(self, index: int, instance: Any) -> Row:
        if isinstance(instance, dict):
            unknown = [key for key in instance if key not in self._known]
            if unknown:
                raise InvalidInput(
                    f"instance {index} names {', '.join(map(repr, unknown))}, which model "
                    f"{self.model_name} does not take; its fields are {', '.join(self.names)}"
                )
            row = instance
        elif isinstance(instance, list):
            if len(instance) != len(self.names):
                raise InvalidInput(
                    f"instance {index} has {len(instance)} values; model {self.model_name} takes "
                    f"{self.describe()}"
                )
            row = dict(zip(self.names, instance, strict=True))
        else:
            raise InvalidInput(
                f"instance {index} must be a list of {self.describe()} or an object keyed by field name, "
                f"got {type(instance).__name__}"
            )
        for field, value in row.items():
            if not isinstance(value, _SCALARS):
                raise InvalidInput(
                    f"instance {index}: field {field!r} got a {type(value).__name__}; a value is a "
                    "number, a string, a boolean or null"
                )
        return row

    def v2_rows(self, request: InferRequest) -> list[Row]:
        """KServe's V2 request: one tensor of rows (`[rows, fields]`, whatever its name), or one input
        per field, named after it (`[rows]` or `[rows, 1]`)."""
        inputs = request.inputs
        if all(item.name in self._known for item in inputs):
            return self._columns(inputs)
        if len(inputs) == 1:
            return self._row_tensor(inputs[0])
        raise InvalidInput(
            f"model {self.model_name} takes one tensor of rows of {self.describe()}, or one input per "
            f"field named after it; got inputs {', '.join(repr(item.name) for item in inputs)}"
        )

    def _row_tensor(self, item: InferInput) -> list[Row]:
        array = item.as_numpy()
        width = len(self.names)
        if array.ndim == 1 and width == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != width:
            raise InvalidInput(
                f"input {item.name!r} has shape {list(array.shape)}; model {self.model_name} takes rows of "
                f"{self.describe()}: a [rows, {width}] tensor"
            )
        return [dict(zip(self.names, values, strict=True)) for values in python_values(item, array)]

    def _columns(self, inputs: list[InferInput]) -> list[Row]:
        columns: dict[str, list] = {}
        for item in inputs:
            array = item.as_numpy()
            if array.ndim == 2 and array.shape[1] == 1:
                array = array.reshape(-1)
            if array.ndim != 1:
                raise InvalidInput(
                    f"input {item.name!r} has shape {list(array.shape)}; a field's input is one value per "
                    "row: [rows] or [rows, 1]"
                )
            columns[item.name] = python_values(item, array)
        counts = {len(values) for values in columns.values()}
        if len(counts) > 1:
            sizes = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
            raise InvalidInput(f"the inputs hold different numbers of rows ({sizes})")
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def python_values(item: InferInput, array: np.ndarray) -> list:
    """A tensor's values as Python values: BYTES as text, FP32, FP16 and BF16 as the decimals they print
    as (5.1 stays 5.1, not 5.099999904632568, so a split at 5.1 in the model sees what the client sent)."""
    if array.dtype == np.object_:
        try:
            return _decode(array).tolist()
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"input {item.name!r}: BYTES values must be UTF-8 text ({exc})") from None
    if array.dtype.kind in "biu" or array.dtype == np.float64:
        return array.tolist()
    if array.dtype.kind != "f":  # BF16
        array = array.astype(np.float32)
    return array.astype(str).astype(np.float64).tolist()


def _decode(array: np.ndarray) -> np.ndarray:
    decoded = np.empty(array.shape, dtype=np.object_)
    for index, value in np.ndenumerate(array):
        decoded[index] = value.decode() if isinstance(value, bytes) else value
    return decoded
