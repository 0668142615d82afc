"""A SavedModel signature as the server sees it: named, typed and shaped inputs and outputs, and the
checks a request's tensors must pass before TensorFlow sees them (so a wrong dtype or shape is a 400
that names the input, not an error from deep inside a graph)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.v2 import InferInput

DEFAULT_SIGNATURE = "serving_default"

# TensorFlow dtype names -> V2 datatypes (tf.string carries bytes).
_TF_TO_V2 = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "bfloat16": "BF16",
    "string": "BYTES",
}


def v2_datatype(dtype: str) -> str:
    """The V2 datatype of a TensorFlow dtype name (BYTES for string); the name, upper-cased, if V2 has none."""
    return _TF_TO_V2.get(dtype, dtype.upper())


class TensorInfo(NamedTuple):
    """One input or output of a signature."""

    name: str
    dtype: str  # TensorFlow's name: float32, int64, string...
    shape: list[int] | None  # -1 for a dimension of any size; None when even the rank is unknown

    @property
    def datatype(self) -> str:
        return v2_datatype(self.dtype)

    def metadata(self) -> dict:
        return {
            "name": self.name,
            "datatype": self.datatype,
            "shape": [-1] if self.shape is None else self.shape,
        }


def tensor_info(name: str, spec: Any) -> TensorInfo:
    """A TensorInfo from a `tf.TensorSpec` (read through its attributes; TensorFlow is not imported)."""
    dims = spec.shape.as_list() if spec.shape.rank is not None else None
    shape = None if dims is None else [-1 if dim is None else dim for dim in dims]
    return TensorInfo(name, spec.dtype.name, shape)


class Signature:
    """A named entry point of a SavedModel: its function, inputs and outputs (each in name order)."""

    def __init__(self, name: str, function: Callable, inputs: list[TensorInfo], outputs: list[TensorInfo]):
        self.name = name
        self.function = function
        self.inputs = inputs
        self.outputs = outputs

    @classmethod
    def of(cls, name: str, function: Any) -> Signature:
        """The signature of a loaded SavedModel's signature function."""
        _args, kwargs = function.structured_input_signature
        outputs = function.structured_outputs
        return cls(
            name,
            function,
            [tensor_info(key, spec) for key, spec in sorted(kwargs.items())],
            [tensor_info(key, spec) for key, spec in sorted(outputs.items())],
        )

    def input_names(self) -> str:
        return ", ".join(info.name for info in self.inputs)

    def check_shape(self, info: TensorInfo, array: np.ndarray) -> None:
        if info.shape is None:
            return
        shape = list(array.shape)
        fits = len(shape) == len(info.shape) and all(
            wanted in (-1, size) for wanted, size in zip(info.shape, shape, strict=True)
        )
        if not fits:
            raise InvalidInput(
                f"input {info.name!r} has shape {shape} but signature {self.name!r} takes "
                f"{info.shape} (-1: any size)"
            )

    def v2_arrays(self, inputs: list[InferInput]) -> dict[str, np.ndarray]:
        """The arrays of a V2 request, keyed by this signature's input names. Inputs are matched by
        name; a lone input of a signature with one input is matched whatever its name."""
        if len(inputs) == 1 and len(self.inputs) == 1:
            pairs = [(self.inputs[0], inputs[0])]
        else:
            pairs = self.pair_by_name(inputs)
        arrays = {}
        for info, given in pairs:
            datatype = str(given.datatype).upper()
            if datatype != info.datatype:
                matched = "" if given.name == info.name else f" as its input {info.name!r}"
                raise InvalidInput(
                    f"input {given.name!r} is {datatype} but signature {self.name!r} takes "
                    f"{info.datatype} ({info.dtype}){matched}"
                )
            array = given.as_numpy()
            self.check_shape(info, array)
            arrays[info.name] = array
        return arrays

    def pair_by_name(self, inputs: list[InferInput]) -> list[tuple[TensorInfo, InferInput]]:
        by_name = {given.name: given for given in inputs}  # one each: `check_unique_names` decoded them
        known = {info.name for info in self.inputs}
        unknown = [name for name in by_name if name not in known]
        if unknown:
            raise InvalidInput(
                f"signature {self.name!r} has no input named {', '.join(map(repr, unknown))}; "
                f"its inputs are: {self.input_names()}"
            )
        missing = [info.name for info in self.inputs if info.name not in by_name]
        if missing:
            raise InvalidInput(
                f"signature {self.name!r} needs input(s) {', '.join(map(repr, missing))}; "
                f"its inputs are: {self.input_names()}"
            )
        return [(info, by_name[info.name]) for info in self.inputs]
