"""A custom predictor that takes 0.2 s per request and says which replica answered (its process id).

Used by the autoscaling test and bench/autoscaling.py: under load its revision visibly scales out.
"""

import asyncio
import os

from modelplane.server import Model, ModelServer


class Slow(Model):
    def load(self):
        self.ready = True
        return True

    async def predict(self, payload, headers=None):
        await asyncio.sleep(0.2)
        return {"predictions": [os.getpid()]}


ModelServer(http_port=int(os.environ["PORT"]), grpc_port=None).start([Slow("slow")])
