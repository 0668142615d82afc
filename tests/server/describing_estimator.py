"""An estimator that answers what it was given, to see how a request's content types were read."""

from __future__ import annotations

import numpy as np


class Describer:
    """`predict` answers one string per column of a table (`name:dtype`), else one per element of what
    it was given (`container:element type:element`)."""

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        if hasattr(X, "columns"):
            return np.array([f"{name}:{X[name].dtype}" for name in X.columns])
        return np.array([f"{type(X).__name__}:{type(item).__name__}:{item}" for item in X])


class CallRows:
    """`predict` answers, for each row, how many rows its call had."""

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        return np.full(len(X), len(X))
