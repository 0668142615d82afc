"""modelplane's side of bench/transformer.py: a pass-through transformer, the same as
peers/kserve_transformer.py with its import changed. `preprocess` hands on the V2 request it was given (an
`InferRequest`), the default `predict` (there is none here) sends it to `--predictor-host`, and
`postprocess` returns the predictor's answer. Both stages are `async def`, as in the KServe peer.

    python3 -m modelplane serve --model-class bench/peers/modelplane_transformer.py:PassThrough \
        --model-name iris --predictor-host 127.0.0.1:PORT --predictor-protocol v2 (or grpc-v2)
"""

from __future__ import annotations

from modelplane.server import InferRequest, Model


class PassThrough(Model):
    def load(self) -> bool:
        self.ready = True
        return True

    async def preprocess(self, payload, headers=None):
        if not isinstance(payload, InferRequest):
            raise TypeError(f"expected a V2 InferRequest, got {type(payload).__name__}")
        return payload

    async def postprocess(self, result, headers=None, response_headers=None):
        return result
