"""KServe 0.21's Python ModelServer as a pass-through transformer in front of a predictor: `preprocess` hands
on the V2 request it was given (an `InferRequest`), KServe's own `predict` sends it to the predictor, and
`postprocess` returns the predictor's answer. Both stages are `async def`, as KServe's own are, so that
neither server puts them on a thread (modelplane runs a plain `def` stage on its executor).

Runs inside bench/.envs/ms-kserve (created by bench/model_server.py or bench/transformer.py) as

    python bench/peers/kserve_transformer.py --model_name iris --http_port P --workers 1 --enable_grpc false \
        --predictor_host 127.0.0.1:Q --protocol v2 --predictor_protocol v2 \
        --configure_logging false --enable_latency_logging false

All flags are KServe's own (`kserve.model_server.parser`). KServe 0.21 builds its PredictorConfig from
`--predictor_protocol` only (`--protocol` is parsed and ignored), so the benchmark passes both. The servers
listen on 127.0.0.1 (kserve_loopback).
"""

from __future__ import annotations

import kserve
import kserve_loopback  # noqa: F401 - before the servers start
from kserve import InferRequest


class PassThrough(kserve.Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.ready = True

    async def preprocess(self, payload, headers=None):
        if not isinstance(payload, InferRequest):
            raise TypeError(f"expected a V2 InferRequest, got {type(payload).__name__}")
        return payload

    async def postprocess(self, result, headers=None, response_headers=None):
        return result


def main() -> None:
    args, _ = kserve.model_server.parser.parse_known_args()
    kserve.ModelServer().start([PassThrough(args.model_name)])


if __name__ == "__main__":
    main()
