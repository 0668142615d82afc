"""KServe 0.21's Python ModelServer serving a TorchScript program, as a KServe user writes it: a custom
`kserve.Model` that loads the `.pt` with `torch.jit.load` and predicts under `torch.inference_mode`, on V1
`instances` and on V2 inputs (KServe serves TorchScript itself only through Triton).

Runs inside bench/.envs/ts-kserve (created by bench/torchscript.py, with the current environment's torch) as

    python bench/peers/kserve_torchscript.py --model_dir DIR --model_name mlp --http_port P --grpc_port G \
        --workers 1 --configure_logging false --enable_latency_logging false

All flags are KServe's own (`kserve.model_server.parser`); the servers listen on 127.0.0.1 (kserve_loopback).
"""

from __future__ import annotations

import argparse
import os

import kserve
import kserve_loopback  # noqa: F401 - before the servers start
import torch
from kserve import InferOutput, InferRequest, InferResponse
from kserve.utils.utils import generate_uuid


class TorchScriptModel(kserve.Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.ready = False

    def load(self) -> bool:
        self.program = torch.jit.load(os.path.join(self.model_dir, "model.pt"), map_location="cpu").eval()
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, InferRequest):
            inputs = torch.from_numpy(payload.inputs[0].as_numpy())
            with torch.inference_mode():
                result = self.program(inputs).numpy()
            output = InferOutput(name="output-0", shape=list(result.shape), datatype="FP32")
            output.set_data_from_numpy(result, binary_data=False)
            # A request without an id gets a new one, as KServe's own get_predict_response does.
            response_id = payload.id or generate_uuid()
            return InferResponse(response_id=response_id, model_name=self.name, infer_outputs=[output])
        inputs = torch.tensor(payload["instances"], dtype=torch.float32)
        with torch.inference_mode():
            result = self.program(inputs)
        return {"predictions": result.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    model = TorchScriptModel(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
