"""KServe's ART explainer: adversarial examples from the Adversarial Robustness Toolbox.

`:explain` takes KServe's payload, `{"instances": [images, labels]}` (a batch of images, channels
last, and their labels), and attacks the predictor with ART's SquareAttack, a black-box attack that
only needs the predictor's answers: each query is a V1 `:predict` call to the predictor, one row per
image, as KServe's explainer makes it. The answer is KServe's:

    {"explanations": {"adversarial_example": [...], "L2 error": ..., "adversarial_prediction": ..., "prediction": ...}}

The library is imported when the explainer loads: without it (`pip install "modelplane[art]"`) the
explainer is not ready and says why, and nothing else of its service is affected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelplane.protocol.errors import InvalidInput
from modelplane.server.model import Model
from modelplane.server.predictor_client import predict_blocking

ADVERSARY_TYPES = ("SquareAttack",)
DEFAULT_NB_CLASSES = 10  # KServe's defaults
DEFAULT_MAX_ITER = 1000
EXTRA = "art"


class ARTExplainer(Model):
    def __init__(
        self,
        name: str,
        adversary_type: str = "SquareAttack",
        nb_classes: int = DEFAULT_NB_CLASSES,
        max_iter: int = DEFAULT_MAX_ITER,
    ):
        super().__init__(name)
        self.adversary_type = adversary_type
        self.nb_classes = nb_classes
        self.max_iter = max_iter
        self.load_error: str | None = None
        self._art: Any = None

    def load(self) -> bool:
        if self.adversary_type.lower() not in (kind.lower() for kind in ADVERSARY_TYPES):
            raise ValueError(
                f"the ART explainer has no adversary type {self.adversary_type!r}; it runs "
                + ", ".join(ADVERSARY_TYPES)
            )
        if not self.predictor_host:
            raise ValueError("the ART explainer needs --predictor-host: the predictor it queries")
        try:
            from art.attacks.evasion.square_attack import SquareAttack
            from art.estimators.classification import BlackBoxClassifierNeuralNetwork
        except ImportError as exc:
            raise RuntimeError(
                f"the ART explainer needs the adversarial-robustness-toolbox package ({exc}): "
                f'pip install "modelplane[{EXTRA}]"'
            ) from None
        self._art = (SquareAttack, BlackBoxClassifierNeuralNetwork)
        self.ready = True
        return True

    def explain(self, payload: Any, headers: dict[str, str] | None = None) -> dict:
        images, label = _instances(payload)
        square_attack, black_box = self._art

        def query(batch: np.ndarray) -> np.ndarray:
            rows = batch.reshape((len(batch), -1))
            answer = predict_blocking(self, {"instances": rows.tolist()}, headers)
            predictions = np.asarray(_predictions(answer))
            if predictions.ndim == 2:  # scores per class: the class is the highest
                predictions = predictions.argmax(axis=1)
            predictions = predictions.reshape(-1)
            return (predictions[:, None] == np.arange(self.nb_classes)[None, :]).astype(np.float32)

        classifier = black_box(
            query, images.shape, self.nb_classes, channels_first=False, clip_values=(-np.inf, np.inf)
        )
        try:
            prediction = np.argmax(classifier.predict(images, batch_size=1))
            attack = square_attack(estimator=classifier, max_iter=self.max_iter, verbose=False)
            adversarial = attack.generate(x=images, y=label)
        except ValueError as exc:  # ART refuses what it cannot attack (an image too small, not an image)
            raise InvalidInput(f"SquareAttack cannot attack these instances: {exc}") from None
        adversarial_prediction = np.argmax(classifier.predict(adversarial))
        l2_error = np.linalg.norm(np.reshape(adversarial[0] - images, [-1]))
        return {
            "explanations": {
                "adversarial_example": adversarial.tolist(),
                "L2 error": l2_error.tolist(),
                "adversarial_prediction": adversarial_prediction.tolist(),
                "prediction": prediction.tolist(),
            }
        }


def _instances(payload: Any) -> tuple[np.ndarray, np.ndarray]:
    """KServe's explain payload: `instances` is [images, labels], the images a batch of
    height x width x channels arrays."""
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or len(instances) != 2:
        raise InvalidInput('the ART explainer takes {"instances": [images, labels]}')
    try:
        images = np.asarray(instances[0], dtype=np.float64)
        label = np.asarray(instances[1])
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the images and labels must be arrays of numbers: {exc}") from None
    if images.ndim != 4:
        raise InvalidInput(
            "SquareAttack attacks images: instances[0] must be a batch of images, "
            f"[batch][height][width][channels], not an array of shape {list(images.shape)}"
        )
    return images, label


def _predictions(answer: Any) -> list:
    if not isinstance(answer, dict) or not isinstance(answer.get("predictions"), list):
        raise InvalidInput(f'the predictor answered without "predictions": {str(answer)[:200]}')
    return answer["predictions"]
