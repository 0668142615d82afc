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
        # The training categories of each feature trained as a pandas `category` column, by name.
        self._categories: dict[str, list] = {}

    def load(self) -> bool:
        lightgbm = require("lightgbm", "lightgbm")
        path = find_model_file(self.model_dir, self.extensions, is_model=is_lightgbm_text)
        self._booster = lightgbm.Booster(model_file=str(path), params={"num_threads": self.nthread})
        self.features = self._booster.num_feature()
        self._categories = training_categories(self._booster)
        self.ready = True
        return True

    @property
    def answers_requested_outputs(self) -> bool:
        # MLServer's LightGBMModel answers its one output, `predict`, whatever outputs a request names.
        return self.v2_outputs != "mlserver"

    def mlserver_outputs(self, requested: list[str]) -> list[str]:
        return ["predict"]

    def compute(self, data: Any) -> Any:
        if hasattr(data, "columns"):
            data = with_training_categories(data[self._booster.feature_name()], self._categories)
        return self._booster.predict(data, num_threads=self.nthread)


def training_categories(booster: Any) -> dict[str, list]:
    """{feature name: its training categories} for the features trained from pandas `category` columns.

    LightGBM saves the categories of each `category` column of the training DataFrame, in column order,
    as `pandas_categorical`, and the indices of the categorical features as the `categorical_feature`
    parameter. When there are as many of each, the i-th categories belong to the i-th categorical
    feature. When there are not (an ordered `category` column, which LightGBM trains as numeric codes, or
    an integer column declared categorical) the pairing is unknown and nothing is converted."""
    categories = booster.pandas_categorical or []
    indices = categorical_feature_indices(booster.params)
    if not categories or len(indices) != len(categories):
        return {}
    names = booster.feature_name()
    return {names[index]: list(values) for index, values in zip(indices, categories, strict=True)}


def categorical_feature_indices(params: dict[str, Any]) -> list[int]:
    """The sorted indices of the `categorical_feature` parameter of a loaded booster (a list of ints;
    a comma-separated string is read too)."""
    value = params.get("categorical_feature", [])
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    try:
        return sorted(int(index) for index in value)
    except (TypeError, ValueError):
        return []


def with_training_categories(frame: Any, categories: dict[str, list]) -> Any:
    """`frame` with each column the model trained as a `category` column made a pandas Categorical of
    the training categories, so that LightGBM gives its values the codes they had in training. A value
    that is not a training category becomes missing (NaN), as LightGBM makes an unseen category."""
    columns = [name for name in categories if name in frame.columns]
    if not columns:
        return frame
    import pandas

    frame = frame.copy(deep=False)
    for name in columns:
        values = frame[name]
        known = values.where(values.isin(categories[name]))
        frame[name] = pandas.Categorical(known, categories=categories[name])
    return frame
