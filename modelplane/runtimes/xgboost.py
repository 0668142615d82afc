"""XGBoost boosters (`.bst`, `.json`, `.ubj`)."""

from __future__ import annotations

from typing import Any

from modelplane.runtimes.base import TabularModel, find_model_file, require


class XGBoostModel(TabularModel):
    extensions = (".bst", ".json", ".ubj")

    def __init__(self, name: str, model_dir: str, nthread: int = 1, **options: Any):
        super().__init__(name, model_dir, **options)
        self.nthread = nthread
        self._booster: Any = None

    def load(self) -> bool:
        self._xgb = require("xgboost", "xgboost")
        path = find_model_file(self.model_dir, self.extensions)
        self._booster = self._xgb.Booster(params={"nthread": self.nthread}, model_file=str(path))
        self.features = self._booster.num_features()
        self.ready = True
        return True

    def compute(self, data: Any) -> Any:
        return self._booster.predict(self._xgb.DMatrix(data, nthread=self.nthread))
