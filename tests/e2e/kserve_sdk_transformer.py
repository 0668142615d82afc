"""A transformer written with KServe's SDK: V1 rows in millimetres become a V2 request in centimetres,
sent to the predictor over gRPC (`--predictor_protocol grpc-v2`) at the `--predictor_host` it is given,
and the predictor's V2 answer becomes V1 predictions again."""

import argparse

import numpy as np
from kserve import InferInput, InferRequest, Model, ModelServer, model_server


class Centimetres(Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.ready = True

    def preprocess(self, payload, headers=None):
        rows = np.asarray(payload["instances"], dtype=np.float32) / 10
        tensor = InferInput(name="input-0", shape=list(rows.shape), datatype="FP32")
        tensor.set_data_from_numpy(rows)
        return InferRequest(model_name=self.name, infer_inputs=[tensor])

    def postprocess(self, response, headers=None):
        return {"predictions": response.outputs[0].as_numpy().tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    args, _ = parser.parse_known_args()
    ModelServer().start([Centimetres(args.model_name)])
