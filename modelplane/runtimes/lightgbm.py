"""LightGBM boosters saved as text (`.bst`, `.txt`)."""

from __future__ import annotations

from typing import Any

from modelplane.runtimes.base import TabularModel, find_model_file, require
from modelplane.runtimes.detect import is_lightgbm_text


class LightGBMModel(TabularModel):
    extensions = (".bst", ".txt")
    selects_columns_by_name = True

    def __init__(self, name: str, model_dir: str, nthread: int = 1, **options: Any):
        super().__init__(name, model_dir, **options)
        self.nthread = nthread
        self._booster: Any = None

    def load(self) -> bool:
        lightgbm = require("lightgbm", "lightgbm")
        path = find_model_file(self.model_dir, self.extensions, is_model=is_lightgbm_text)
        self._booster = lightgbm.Booster(model_file=str(path), params={"num_threads": self.nthread})
        self.features = self._booster.num_feature()
        self.ready = True
        return True

    def compute(self, data: Any) -> Any:
        if hasattr(data, "columns"):
            data = data[self._booster.feature_name()]
        return self._booster.predict(data, num_threads=self.nthread)
