"""scikit-learn models saved with joblib or pickle (`.joblib`, `.pkl`, `.pickle`)."""

from __future__ import annotations

import logging
import os
from typing import Any

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.v2 import InferRequest, InferResponse, output_from_array
from modelplane.runtimes.base import TabularModel, find_model_file, require
from modelplane.runtimes.sklearn_linear import linear_predict

logger = logging.getLogger(__name__)

# MLServer's sklearn runtime names its outputs after the estimator's methods: a V2 request that asks
# for one of these outputs gets that method's answer under that name.
METHOD_OUTPUTS = ("predict", "predict_proba", "transform")
DEFAULT_OUTPUT = "output-0"


class SKLearnModel(TabularModel):
    extensions = (".joblib", ".pkl", ".pickle")

    def __init__(self, name: str, model_dir: str, predict_proba: bool | None = None, **options: Any):
        super().__init__(name, model_dir, **options)
        if predict_proba is None:
            predict_proba = os.environ.get("PREDICT_PROBA", "false").lower() in ("true", "1", "yes", "on")
        self.predict_proba = predict_proba
        # MLServer's `parameters.extra.predict_fn` (model-settings.json): the method that answers.
        self.predict_fn: str | None = None
        self._estimator: Any = None
        self._method_name = "predict"
        self._labels: list[str] | None = None

    def load(self) -> bool:
        joblib = require("joblib", "sklearn")
        require("sklearn", "sklearn")
        self._estimator = joblib.load(find_model_file(self.model_dir, self.extensions))
        self._method = self._prediction_method()
        # predict_proba's columns are the estimator's classes, in `classes_`'s order.
        probabilities = self._method == getattr(self._estimator, "predict_proba", None)
        self._labels = _class_names(self._estimator) if probabilities else None
        self.ready = True
        return True

    def _prediction_method(self) -> Any:
        if self.predict_fn:
            method = getattr(self._estimator, self.predict_fn, None)
            if not callable(method):
                raise RuntimeError(
                    f"model {self.name}: model-settings.json's predict_fn is {self.predict_fn!r}, "
                    f"which {type(self._estimator).__name__} does not have"
                )
            if self.predict_fn != "predict":
                self._method_name = self.predict_fn
                return method
        # As KServe's sklearnserver: PREDICT_PROBA applies to the estimators that have predict_proba
        # (regressors, SVC without probability=True, ... do not), the others answer with predict.
        elif self.predict_proba:
            if hasattr(self._estimator, "predict_proba"):
                self._method_name = "predict_proba"
                return self._estimator.predict_proba
            logger.warning(
                "model %s: %s has no predict_proba; it answers with predict",
                self.name,
                type(self._estimator).__name__,
            )
        self._method_name = "predict"
        return linear_predict(self._estimator) or self._estimator.predict

    def classification_labels(self, output: str) -> list[str] | None:
        """With predict_proba, each class's name labels its column (V2's classification parameter)."""
        if output == "predict_proba":
            return _class_names(self._estimator)
        return self._labels if output == DEFAULT_OUTPUT else None

    def compute(self, data: Any) -> Any:
        return self._method(data)

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        names = _requested_method_outputs(payload)
        if not names or self.v2_outputs == "mlserver":
            return await super().predict(payload, headers)
        data = self.v2_inputs(payload)
        self._check_width(data)
        outputs = []
        for name in names:
            if name == DEFAULT_OUTPUT:
                result = await self._predict_rows(data)
            else:
                result = await self._compute(data, self._estimator_method(name))
            outputs.append(output_from_array(name, result))
        return InferResponse(payload.id, self.name, outputs)

    def mlserver_default_output(self) -> str:
        return self._method_name

    def mlserver_method(self, output: str) -> Any:
        if output == self._method_name:
            return None
        if output not in METHOD_OUTPUTS:
            raise InvalidInput(
                "SKLearnModel only supports 'predict', 'predict_proba' and 'transform' as outputs "
                f"({output} was received)"
            )
        return self._estimator_method(output)

    def _estimator_method(self, name: str) -> Any:
        method = getattr(self._estimator, name, None)
        if method is None:
            raise InvalidInput(
                f"model {self.name} has no output {name!r}: {type(self._estimator).__name__} has no {name}"
            )
        if name == "predict":
            return linear_predict(self._estimator) or method
        return method


def _requested_method_outputs(payload: Any) -> list[str]:
    """The outputs a V2 request asks for, where it asks for one named after an estimator's method
    (others are left for the server to refuse as unknown)."""
    if not isinstance(payload, InferRequest) or not payload.request_outputs:
        return []
    names = [output.name for output in payload.request_outputs]
    if not any(name in METHOD_OUTPUTS for name in names):
        return []
    return [name for name in names if name in METHOD_OUTPUTS or name == DEFAULT_OUTPUT]


def _class_names(estimator: Any) -> list[str] | None:
    classes = getattr(estimator, "classes_", None)
    return None if classes is None else [str(label) for label in classes]
