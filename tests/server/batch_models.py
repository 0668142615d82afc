"""A model for the batcher's tests: each answer row tells how many rows the model call it came from had.

`modelplane serve --model-class tests/server/batch_models.py:RowCounter ...`
"""

from __future__ import annotations

import time

import numpy as np

from modelplane.server import InferOutput, InferRequest, InferResponse, InvalidInput, Model

SLOW_VALUE = 999  # a row holding it makes the model call last SLOW_SECONDS
SLOW_SECONDS = 5  # ten times the test's batch timeout


class RowCounter(Model):
    """V1: each instance's prediction is `[sum of the instance, rows in the call]`. V2: outputs `sum`
    (FP64), `rows` (INT64) and `binary` (BOOL, the request's `use_binary_outputs`), one entry per input
    row. Negative values are refused (a bad request). A V1 request with `"summary": true` gets one
    prediction however many instances it has."""

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            data = payload.inputs[0].as_numpy()
            rows = data.shape[0]
            sums = _checked(data).reshape(rows, -1).sum(axis=1)
            outputs = [
                InferOutput("sum", [rows], "FP64", sums.astype(np.float64)),
                InferOutput("rows", [rows], "INT64", np.full(rows, rows, dtype=np.int64)),
                InferOutput("binary", [rows], "BOOL", np.full(rows, payload.use_binary_outputs)),
            ]
            return InferResponse(payload.id, self.name, outputs)
        instances = payload["instances"] if "instances" in payload else payload["inputs"]
        if payload.get("summary"):  # one prediction for all the instances: a batch cannot be split
            return {"predictions": [len(instances)]}
        sums = _checked(np.asarray(instances, dtype=np.float64)).reshape(len(instances), -1).sum(axis=1)
        return {
            "predictions": [[float(total), len(instances)] for total in sums],
            "tenant": headers.get("x-tenant"),
            "request_id": headers.get("x-request-id"),
        }


def _checked(data: np.ndarray) -> np.ndarray:
    if (data < 0).any():
        raise InvalidInput(f"negative values are refused: {data.tolist()}")
    if (data == SLOW_VALUE).any():
        time.sleep(SLOW_SECONDS)
    return data
