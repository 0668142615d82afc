"""XGBoost boosters (`.bst`, `.json`, `.ubj`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelplane.protocol.errors import InvalidInput
from modelplane.runtimes.base import TabularModel, find_model_file, require


class XGBoostModel(TabularModel):
    extensions = (".bst", ".json", ".ubj")

    def __init__(self, name: str, model_dir: str, nthread: int = 1, **options: Any):
        super().__init__(name, model_dir, **options)
        self.nthread = nthread
        self._booster: Any = None
        # Answering as MLServer's runtime: the model through xgboost's scikit-learn interface.
        self._estimator: Any = None

    def load(self) -> bool:
        self._xgb = require("xgboost", "xgboost")
        path = find_model_file(self.model_dir, self.extensions)
        self._booster = self._xgb.Booster(params={"nthread": self.nthread}, model_file=str(path))
        self.features = self._booster.num_features()
        if self.v2_outputs == "mlserver":
            self._estimator = _sklearn_interface(self._xgb, path, self.nthread)
        self.ready = True
        return True

    def compute(self, data: Any) -> Any:
        return self._booster.predict(self._xgb.DMatrix(data, nthread=self.nthread))

    def mlserver_method(self, output: str) -> Any:
        # As MLServer's XGBoostModel: a classifier (saved from XGBClassifier) answers `predict` with
        # its labels and `predict_proba` with its probabilities; anything else is a regressor, whose
        # `predict` is the booster's own prediction.
        classifier = isinstance(self._estimator, self._xgb.XGBClassifier)
        if output == "predict":
            return self._estimator.predict if classifier else None
        if output != "predict_proba":
            raise InvalidInput(
                f"XGBoostModel only supports 'predict' and 'predict_proba' as outputs ({output} was received)"
            )
        if not classifier:
            raise InvalidInput(
                "XGBRegressor models do not support 'predict_proba' (a booster saved by "
                "XGBClassifier's save_model is a classifier; one saved by xgboost.train is a regressor)"
            )
        return self._estimator.predict_proba


def _sklearn_interface(xgb: Any, path: Path, nthread: int) -> Any:
    """The model as MLServer's xgboost runtime loads it: an XGBRegressor, unless it was saved from an
    XGBClassifier (then loading it as a regressor is a TypeError)."""
    try:
        regressor = xgb.XGBRegressor(n_jobs=nthread)
        regressor.load_model(str(path))
        return regressor
    except TypeError:
        classifier = xgb.XGBClassifier(n_jobs=nthread)
        classifier.load_model(str(path))
        return classifier
