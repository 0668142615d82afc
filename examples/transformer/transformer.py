"""A transformer: takes iris measurements in millimetres, sends centimetres to its predictor.

It has no `predict` of its own, so modelplane's default forwards the preprocessed request to the
predictor named by `--predictor_host` (which modelplane sets, as KServe does).
"""

from modelplane.server import InferRequest, Model


class MillimetresToCentimetres(Model):
    def load(self) -> bool:
        self.ready = True
        return self.ready

    def preprocess(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            for tensor in payload.inputs:
                tensor.set_data_from_numpy(tensor.as_numpy() / 10)
            return payload
        return {"instances": [[value / 10 for value in row] for row in payload["instances"]]}
