"""An exact shortcut for scikit-learn's linear models.

For a linear model, `predict` is one matrix product; what a call costs is almost all input validation
(hundreds of microseconds per call, against a few for the arithmetic). For inputs that validation would
pass unchanged (a finite 2-D numeric array of the right width) the shortcut does the same arithmetic,
in the same order and types, as the estimator's own `predict`. Anything else goes to `predict`, which
validates and raises as usual. The shortcut is checked against `predict` when the model loads and not
used unless it gives the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Predict = Callable[[Any], Any]


def linear_predict(estimator: Any) -> Predict | None:
    """A `predict` for `estimator` that skips validation for well-formed input, or None if it has none."""
    from sklearn.linear_model._base import LinearClassifierMixin, LinearModel

    cls = type(estimator)
    coef = getattr(estimator, "coef_", None)
    width = getattr(estimator, "n_features_in_", None)
    if not isinstance(coef, np.ndarray) or not isinstance(width, int) or coef.dtype.kind != "f":
        return None
    intercept = estimator.intercept_
    coef_t = coef.T if coef.ndim == 2 else coef

    if (
        isinstance(estimator, LinearClassifierMixin)
        and cls.predict is LinearClassifierMixin.predict
        and cls.decision_function is LinearClassifierMixin.decision_function
    ):
        classes = estimator.classes_

        def compute(X: np.ndarray) -> np.ndarray:
            scores = X @ coef_t + intercept
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores.reshape(-1)
            indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
            return classes.take(indices, axis=0)

    elif (
        isinstance(estimator, LinearModel)
        and cls.predict is LinearModel.predict
        and cls._decision_function is LinearModel._decision_function
    ):

        def compute(X: np.ndarray) -> np.ndarray:
            return X @ coef_t + intercept

    else:
        return None

    def predict(X: Any) -> Any:
        if (
            isinstance(X, np.ndarray)
            and X.ndim == 2
            and X.shape[1] == width
            and X.shape[0] > 0
            and X.dtype.kind in "fiu"
            and (X.dtype.kind != "f" or np.isfinite(X).all())
        ):
            return compute(X)
        return estimator.predict(X)

    return predict if _agrees(predict, estimator, width) else None


def _agrees(predict: Predict, estimator: Any, width: int) -> bool:
    probe = np.random.default_rng(0).normal(size=(16, width))
    try:
        return all(
            np.array_equal(predict(X), estimator.predict(X))
            for X in (probe, probe.astype(np.float32), probe[:1])
        )
    except Exception:  # noqa: BLE001 - a model that cannot take the probe keeps its own predict
        return False
