"""KServe 0.21's Python ModelServer serving the iris LogisticRegression, as KServe's sklearnserver does.

Runs inside bench/.envs/ms-kserve (created by bench/model_server.py) as

    python bench/peers/kserve_iris.py --model_dir DIR --model_name iris --http_port P --grpc_port G --workers 1 \
        [--configure_logging false --enable_latency_logging false]

All flags are KServe's own (`kserve.model_server.parser`). One change to KServe: it binds 0.0.0.0 (REST) and
[::] (gRPC), hard-coded; this wrapper rewrites those two addresses to 127.0.0.1 before the servers start, so the
benchmark listens on loopback only. Nothing on the request path is touched.
"""

from __future__ import annotations

import argparse
import os

import grpc.aio._server
import joblib
import kserve
import uvicorn
from kserve.utils.utils import get_predict_input, get_predict_response

_config_init = uvicorn.Config.__init__


def _loopback_config_init(self, *args, **kwargs):
    if kwargs.get("host") == "0.0.0.0":
        kwargs["host"] = "127.0.0.1"
    _config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _loopback_config_init

_add_insecure_port = grpc.aio._server.Server.add_insecure_port


def _loopback_add_insecure_port(self, address):
    if address.startswith("[::]:"):
        address = "127.0.0.1:" + address[len("[::]:") :]
    return _add_insecure_port(self, address)


grpc.aio._server.Server.add_insecure_port = _loopback_add_insecure_port


class SKLearnIris(kserve.Model):
    """The same load/predict as kserve's sklearnserver.SKLearnModel (predict, not predict_proba)."""

    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.ready = False

    def load(self) -> bool:
        self._model = joblib.load(os.path.join(self.model_dir, "model.joblib"))
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None, response_headers=None):
        instances = get_predict_input(payload)
        result = self._model.predict(instances)
        return get_predict_response(payload, result, self.name)


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    model = SKLearnIris(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
