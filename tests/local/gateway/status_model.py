"""A model whose answer has the status its input asks for: `[["bad"]]` is a 400, `[["boom"]]` a 500,
anything else comes back as the predictions (200); over V2 (gRPC too), a first input of BYTES "bad" or
"boom" does the same, and the inputs come back as outputs. For payload logging, which logs every
status."""

from __future__ import annotations

from modelplane.protocol.errors import InvalidInput
from modelplane.server import InferOutput, InferRequest, InferResponse, Model


class StatusModel(Model):
    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            asked = payload.inputs[0].as_numpy().ravel().tolist()
            instances = [[value.decode() if isinstance(value, bytes) else value for value in asked]]
        else:
            instances = payload.get("instances")
        if instances == [["bad"]]:
            raise InvalidInput("the instance is bad")
        if instances == [["boom"]]:
            raise RuntimeError("the model broke")
        if isinstance(payload, InferRequest):
            outputs = [InferOutput(i.name, i.shape, i.datatype, i.as_numpy(), None) for i in payload.inputs]
            return InferResponse(payload.id, self.name, outputs)
        return {"predictions": instances}
