"""scikit-learn models saved with joblib or pickle (`.joblib`, `.pkl`, `.pickle`)."""

from __future__ import annotations

import logging
import os
from typing import Any

from modelplane.runtimes.base import TabularModel, find_model_file, require
from modelplane.runtimes.sklearn_linear import linear_predict

logger = logging.getLogger(__name__)


class SKLearnModel(TabularModel):
    extensions = (".joblib", ".pkl", ".pickle")

    def __init__(self, name: str, model_dir: str, predict_proba: bool | None = None, **options: Any):
        super().__init__(name, model_dir, **options)
        if predict_proba is None:
            predict_proba = os.environ.get("PREDICT_PROBA", "false").lower() in ("true", "1", "yes", "on")
        self.predict_proba = predict_proba
        self._estimator: Any = None
        self._labels: list[str] | None = None

    def load(self) -> bool:
        joblib = require("joblib", "sklearn")
        require("sklearn", "sklearn")
        self._estimator = joblib.load(find_model_file(self.model_dir, self.extensions))
        self._method = self._prediction_method()
        # predict_proba's columns are the estimator's classes, in `classes_`'s order.
        probabilities = self._method == getattr(self._estimator, "predict_proba", None)
        classes = getattr(self._estimator, "classes_", None) if probabilities else None
        self._labels = None if classes is None else [str(label) for label in classes]
        self.ready = True
        return True

    def _prediction_method(self) -> Any:
        # As KServe's sklearnserver: PREDICT_PROBA applies to the estimators that have predict_proba
        # (regressors, SVC without probability=True, ... do not), the others answer with predict.
        if self.predict_proba:
            if hasattr(self._estimator, "predict_proba"):
                return self._estimator.predict_proba
            logger.warning(
                "model %s: %s has no predict_proba; it answers with predict",
                self.name,
                type(self._estimator).__name__,
            )
        return linear_predict(self._estimator) or self._estimator.predict

    def classification_labels(self, output: str) -> list[str] | None:
        """With predict_proba, each class's name labels its column (V2's classification parameter)."""
        return self._labels if output == "output-0" else None

    def compute(self, data: Any) -> Any:
        return self._method(data)
