"""MLflow models for the tests, saved by MLflow itself (`python -m tests.server.mlflow_models ROOT`, run in
a process of its own: importing MLflow takes seconds and a test worker need not pay it).

iris     scikit-learn's LogisticRegression on the iris table, with a column-based signature
         (four FP64 columns named as the table's) -> int64 classes
plain    the same estimator saved without a signature
adder    a pyfunc model from code: a tensor-based signature with named inputs a and b (float64 [-1])
         -> {"sum": a + b, "product": a * b}, with a `scale` param (default 1.0) that multiplies the sum
shouter  a pyfunc model from code: a column-based signature with one string column `text` -> a table
         of `upper` (the text in capitals) and `length` (its length)
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

ADDER = """
import mlflow
import numpy as np


class Adder(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        scale = (params or {}).get("scale", 1.0)
        a, b = np.asarray(model_input["a"]), np.asarray(model_input["b"])
        return {"sum": (a + b) * scale, "product": a * b}


mlflow.models.set_model(Adder())
"""

SHOUTER = """
import mlflow
import pandas as pd


class Shouter(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        text = model_input["text"].astype(str)
        return pd.DataFrame({"upper": text.str.upper(), "length": text.str.len()})


mlflow.models.set_model(Shouter())
"""


def write_models(root: Path) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True, as_frame=True)
    estimator = LogisticRegression(max_iter=500).fit(features, labels)
    signature = mlflow.models.infer_signature(features, estimator.predict(features))
    mlflow.sklearn.save_model(
        estimator, root / "iris", signature=signature, serialization_format="cloudpickle"
    )
    mlflow.sklearn.save_model(estimator, root / "plain", serialization_format="cloudpickle")

    vector = (-1,)
    adder = ModelSignature(
        inputs=Schema(
            [TensorSpec(np.dtype("float64"), vector, "a"), TensorSpec(np.dtype("float64"), vector, "b")]
        ),
        outputs=Schema(
            [
                TensorSpec(np.dtype("float64"), vector, "sum"),
                TensorSpec(np.dtype("float64"), vector, "product"),
            ]
        ),
        params=ParamSchema([ParamSpec("scale", "double", 1.0)]),
    )
    shouter = ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema([ColSpec("string", "upper"), ColSpec("long", "length")]),
    )
    with tempfile.TemporaryDirectory() as code_dir:  # MLflow copies the code into the model folder
        for name, code, model_signature in (("adder", ADDER, adder), ("shouter", SHOUTER, shouter)):
            code_file = Path(code_dir, f"{name}.py")
            code_file.write_text(textwrap.dedent(code))
            mlflow.pyfunc.save_model(root / name, python_model=str(code_file), signature=model_signature)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    write_models(Path(sys.argv[1]))
