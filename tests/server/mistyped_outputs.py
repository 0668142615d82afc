"""A model that answers outputs whose values do not match what it declares for them, as a model written
for KServe may (float64 values under `FP32`, floats under `INT32`, a shape its values do not fill).

`modelplane serve --model-class tests/server/mistyped_outputs.py:MistypedOutputs ...`: the request's
one BYTES element names the output to answer with.
"""

from __future__ import annotations

import numpy as np

from modelplane.server import InferOutput, InferResponse, Model

OUTPUTS = {
    "fp32_of_float64": lambda: InferOutput("y", [2], "FP32", np.array([0.1, 2.5])),
    "int32_of_floats": lambda: InferOutput("y", [2], "INT32", np.array([1.7, -2.2])),
    "bool_of_integers": lambda: InferOutput("y", [2], "BOOL", np.array([0, 2])),
    "values_short_of_the_shape": lambda: InferOutput("y", [3], "FP32", np.array([1.0, 2.0], np.float32)),
    "not_a_datatype": lambda: InferOutput("y", [2], "FLOAT", np.array([1.0, 2.0], np.float32)),
    "list_short_of_the_shape": lambda: InferOutput("y", [2, 2], "FP32", [[1.0, 2.0], [3.0]]),
}


class MistypedOutputs(Model):
    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        case = payload.inputs[0].as_numpy().reshape(-1)[0].decode()
        return InferResponse(payload.id, self.name, [OUTPUTS[case]()])
