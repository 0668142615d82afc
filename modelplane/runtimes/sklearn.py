"""scikit-learn models saved with joblib or pickle (`.joblib`, `.pkl`, `.pickle`)."""

from __future__ import annotations

import os
from typing import Any

from modelplane.runtimes.base import TabularModel, find_model_file, require
from modelplane.runtimes.sklearn_linear import linear_predict


class SKLearnModel(TabularModel):
    extensions = (".joblib", ".pkl", ".pickle")

    def __init__(self, name: str, model_dir: str, predict_proba: bool | None = None, **options: Any):
        super().__init__(name, model_dir, **options)
        if predict_proba is None:
            predict_proba = os.environ.get("PREDICT_PROBA", "false").lower() in ("true", "1", "yes", "on")
        self.predict_proba = predict_proba
        self._estimator: Any = None

    def load(self) -> bool:
        joblib = require("joblib", "sklearn")
        require("sklearn", "sklearn")
        self._estimator = joblib.load(find_model_file(self.model_dir, self.extensions))
        if self.predict_proba:
            self._method = self._estimator.predict_proba
        else:
            self._method = linear_predict(self._estimator) or self._estimator.predict
        self.ready = True
        return True

    def compute(self, data: Any) -> Any:
        return self._method(data)
