"""A predictor that serves TF Serving's `:classify` and `:regress` (as the tensorflow runtime does, here
without TensorFlow), and a transformer in front of it that scales each example's `x`."""

from modelplane.server import Model


class ExampleVerbs(Model):
    example_verbs = frozenset({"classify", "regress"})

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def classify(self, payload, headers=None):
        return {"results": [[["x", float(example["x"])]] for example in payload["examples"]]}

    def regress(self, payload, headers=None):
        return {"results": [float(example["x"]) for example in payload["examples"]]}


class TimesTen(Model):
    def load(self) -> bool:
        self.ready = True
        return self.ready

    def preprocess(self, payload, headers=None):
        return {**payload, "examples": [{"x": example["x"] * 10} for example in payload["examples"]]}

    def postprocess(self, result, headers=None):
        return {**result, "via": "transformer"}
