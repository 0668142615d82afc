"""ONNX models run with onnxruntime (`.onnx`)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from modelplane.protocol.errors import InferenceError, InvalidInput
from modelplane.protocol.v2 import InferRequest, InferResponse, output_from_array
from modelplane.runtimes.base import INLINE_ELEMENTS, TabularModel, find_model_file, require, v1_instances

# onnxruntime's type names -> V2 datatypes, for model metadata.
_ORT_TO_V2 = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
_V2_TO_NUMPY = {
    "FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT8": np.int8, "INT16": np.int16,
    "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
    "UINT64": np.uint64, "BOOL": np.bool_,
}  # fmt: skip


class ONNXModel(TabularModel):
    extensions = (".onnx",)
    reads_parameters = frozenset()  # its inputs by name, never as a table

    def __init__(self, name: str, model_dir: str, nthread: int = 1, **options: Any):
        super().__init__(name, model_dir, **options)
        self.nthread = nthread
        self._session: Any = None

    def load(self) -> bool:
        ort = require("onnxruntime", "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.nthread
        options.inter_op_num_threads = 1
        path = find_model_file(self.model_dir, self.extensions)
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = self._session.get_inputs()
        self._output_names = [output.name for output in self._session.get_outputs()]
        self.ready = True
        return True

    def get_input_types(self) -> list[dict]:
        return [_metadata(node) for node in self._session.get_inputs()] if self._session else []

    def get_output_types(self) -> list[dict]:
        return [_metadata(node) for node in self._session.get_outputs()] if self._session else []

    def _feeds(self, arrays: list[tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
        if len(arrays) != len(self._inputs):
            raise InvalidInput(
                f"model {self.name} takes {len(self._inputs)} input(s) "
                f"({', '.join(node.name for node in self._inputs)}), got {len(arrays)}"
            )
        by_name = dict(arrays)
        feeds = {}
        for position, node in enumerate(self._inputs):
            array = by_name.get(node.name, arrays[position][1] if len(arrays) == 1 else None)
            if array is None:
                raise InvalidInput(f"model {self.name} needs an input named {node.name!r}")
            wanted = _V2_TO_NUMPY.get(_ORT_TO_V2.get(node.type, ""))
            if wanted is not None and array.dtype != wanted:
                array = array.astype(wanted)
            feeds[node.name] = array
        return feeds

    def _run(self, feeds: dict[str, np.ndarray]) -> list:
        return self._session.run(self._output_names, feeds)

    async def _run_async(self, feeds: dict[str, np.ndarray]) -> list:
        try:
            if sum(array.size for array in feeds.values()) <= INLINE_ELEMENTS:
                return self._run(feeds)
            return await asyncio.to_thread(self._run, feeds)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad input
            if type(exc).__name__ in ("InvalidArgument", "Fail", "InvalidGraph") or isinstance(
                exc, ValueError
            ):
                raise InvalidInput(f"the input does not fit model {self.name}: {exc}") from None
            raise InferenceError(f"model {self.name} failed: {exc}") from None

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            arrays = [(item.name, item.as_numpy()) for item in payload.inputs]
            results = await self._run_async(self._feeds(arrays))
            outputs = [
                output_from_array(name, value)
                for name, value in zip(self._output_names, results, strict=True)
            ]
            return InferResponse(payload.id, self.name, outputs)
        instances = v1_instances(payload)
        results = await self._run_async(self._feeds([(self._inputs[0].name, np.asarray(instances))]))
        return {"predictions": results[0]}


def _metadata(node: Any) -> dict:
    shape = [dim if isinstance(dim, int) else -1 for dim in node.shape]
    return {"name": node.name, "datatype": _ORT_TO_V2.get(node.type, "BYTES"), "shape": shape}
