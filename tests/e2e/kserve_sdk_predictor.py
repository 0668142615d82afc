"""A custom predictor written with KServe's SDK, as a KServe user writes one: the weights of a linear
model in `<model_dir>/weights.json` (its `--model_dir`, `/mnt/models` in the container), one score
per row, over V1 and V2; a row of the wrong length is the SDK's InvalidInput (400)."""

import argparse
import json
import os

import numpy as np
from kserve import Model, ModelServer, model_server
from kserve.errors import InvalidInput
from kserve.utils.utils import get_predict_input, get_predict_response


class Linear(Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = model_dir
        self.weights = None

    def load(self) -> bool:
        with open(os.path.join(self.model_dir, "weights.json")) as file:
            self.weights = np.asarray(json.load(file), dtype=np.float32)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        rows = np.asarray(get_predict_input(payload), dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != len(self.weights):
            raise InvalidInput(f"each row has {len(self.weights)} features")
        return get_predict_response(payload, rows @ self.weights, self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    model = Linear(args.model_name, args.model_dir)
    model.load()
    ModelServer().start([model])
