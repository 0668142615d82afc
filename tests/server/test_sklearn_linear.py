"""The linear-model shortcut answers exactly as the estimator's own predict, and defers to it otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelplane.runtimes.sklearn_linear import linear_predict

X, y = load_iris(return_X_y=True)


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(max_iter=1000).fit(X, y),
        LogisticRegression(max_iter=1000).fit(X, y == 1),
        LogisticRegression(max_iter=1000).fit(X, np.array(["setosa", "versicolor", "virginica"])[y]),
        SGDClassifier(random_state=0).fit(X, y),
    ],
)
def test_same_answers_as_predict(estimator):
    predict = linear_predict(estimator)
    assert predict is not None
    for data in (X, X.astype(np.float32), X[:1], X.astype(np.int64)):
        assert np.array_equal(predict(data), estimator.predict(data))
        assert predict(data).dtype == estimator.predict(data).dtype


def test_bad_input_gets_the_estimators_own_error():
    estimator = LogisticRegression(max_iter=1000).fit(X, y)
    predict = linear_predict(estimator)
    with pytest.raises(ValueError, match="NaN"):
        predict(np.array([[np.nan, 1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="3 features"):
        predict(np.array([[1.0, 2.0, 3.0]]))


def test_models_that_are_not_plain_linear_classifiers_keep_their_predict():
    assert linear_predict(RidgeClassifier().fit(X, y)) is None  # overrides predict
    assert linear_predict(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)) is None
