"""A TorchServe handler that answers each picture's most likely label, e.g. `["dog"]`: TorchServe's
image classifier, with a postprocess of its own."""

from ts.torch_handler.image_classifier import ImageClassifier


class TopLabel(ImageClassifier):
    def postprocess(self, data):
        return [self.mapping[str(index)] for index in data.argmax(dim=1).tolist()]
