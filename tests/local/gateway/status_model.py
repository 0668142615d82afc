"""A model whose answer has the status its input asks for: `[["bad"]]` is a 400, `[["boom"]]` a 500,
anything else comes back as the predictions (200). For payload logging, which logs every status."""

from __future__ import annotations

from modelplane.protocol.errors import InvalidInput
from modelplane.server import Model


class StatusModel(Model):
    def load(self) -> bool:
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        instances = payload.get("instances")
        if instances == [["bad"]]:
            raise InvalidInput("the instance is bad")
        if instances == [["boom"]]:
            raise RuntimeError("the model broke")
        return {"predictions": instances}
