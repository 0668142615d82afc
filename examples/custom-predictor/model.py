"""A custom predictor: a plain Python model server, run as the container's command.

Like a KServe custom container, it listens on the port in `PORT` (KServe's 8080; modelplane gives each
replica its own) and answers the V1 and V2 protocols.
"""

import os

from modelplane.server import InferRequest, Model, ModelServer


class Doubler(Model):
    """Doubles every number it is given."""

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            return payload.inputs[0].as_numpy() * 2
        return {"predictions": [[2 * x for x in row] for row in payload["instances"]]}


if __name__ == "__main__":
    name = os.environ.get("MODEL_NAME", "doubler")
    ModelServer(http_port=int(os.environ.get("PORT", "8080")), grpc_port=None).start([Doubler(name)])
