"""Builds the small models and model code the examples serve, into modelplane's pvc folder.

    python examples/build_models.py        # then: modelplane apply -f examples/sklearn-iris.yaml

Each example's `storageUri` is `pvc://examples/<name>`: on one machine a claim is a folder,
`$MODELPLANE_PVC_DIR/<claim>` (default `~/.modelplane/pvc/<claim>`). Nothing is downloaded: the
models are trained here on the iris data set that ships with scikit-learn, and the Hugging Face ones
on a few sentences (huggingface_models.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_all(root: Path) -> list[Path]:
    """Writes every example's folder under `root` (the `examples` claim) and returns them. The deep
    learning examples are built when their libraries are installed, and skipped with a note otherwise."""
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    built = [
        _sklearn(root / "sklearn-iris", features, labels),
        _xgboost(root / "xgboost-iris", features, labels),
        _lightgbm(root / "lightgbm-iris", features, labels),
        _code(root / "custom-predictor", HERE / "custom-predictor" / "model.py"),
        _code(root / "transformer", HERE / "transformer" / "transformer.py"),
        _digits(root / "sklearn-digits"),
        _code(root / "custom-explainer", HERE / "observability" / "custom-explainer" / "explainer.py"),
    ]
    try:
        built.append(_tensorflow(root / "tensorflow-iris", features, labels))
        built.append(write_tensorflow_mnist(root / "tensorflow" / "mnist.savedmodel"))
    except ImportError as exc:  # the examples that need their own extra
        print(f"skipped the TensorFlow examples: {exc}", file=sys.stderr)
    built += _pytorch(root)
    built += _huggingface(root)
    return built


def _huggingface(root: Path) -> list[Path]:
    if any(importlib.util.find_spec(name) is None for name in ("transformers", "tokenizers", "torch")):
        print('skipped the Hugging Face examples: pip install "modelplane[huggingface]"')
        return []
    sys.path.insert(0, str(HERE))
    from huggingface_models import write_reranker, write_text_classifier, write_text_generator

    return [
        write_text_classifier(_fresh(root / "text-classifier")),
        write_text_generator(_fresh(root / "text-generator")),
        write_reranker(_fresh(root / "reranker")),
    ]


def _pytorch(root: Path) -> list[Path]:
    if importlib.util.find_spec("ts") is None or importlib.util.find_spec("model_archiver") is None:
        print('skipped the PyTorch examples: pip install "modelplane[torchserve]"')
        return []
    sys.path.insert(0, str(HERE))
    from pytorch_models import write_dog_breed_stores, write_torchscript

    return [*write_dog_breed_stores(root), write_torchscript(root / "torchscript-mlp")]


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _sklearn(folder: Path, features, labels) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), _fresh(folder) / "model.joblib")
    return folder


def _digits(folder: Path) -> Path:
    """scikit-learn's bundled 8x8 digits, pixels scaled to [0, 1]: images for the ART explainer's
    SquareAttack, as KServe's ART sample attacks MNIST."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    return _sklearn(folder, images / 16.0, labels)


def _xgboost(folder: Path, features, labels) -> Path:
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(features, labels)
    model.get_booster().save_model(str(_fresh(folder) / "model.json"))
    return folder


def _lightgbm(folder: Path, features, labels) -> Path:
    import lightgbm

    model = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(features, labels)
    model.booster_.save_model(str(_fresh(folder) / "model.txt"))
    return folder


def _tensorflow(folder: Path, features, labels) -> Path:
    """The iris classifier as a Keras softmax layer holding a logistic regression's weights, exported
    as version 1 of a SavedModel in TF Serving's layout (`<folder>/1/saved_model.pb`)."""
    from sklearn.linear_model import LogisticRegression

    from modelplane.runtimes.tensorflow import import_tensorflow

    import_tensorflow(nthread=1)  # quietly, as the model server imports it
    import keras

    regression = LogisticRegression(max_iter=1000).fit(features, labels)
    inputs = keras.Input(shape=(4,), name="features")
    layer = keras.layers.Dense(3, activation="softmax", name="probabilities")
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([regression.coef_.T, regression.intercept_])
    model.export(str(_fresh(folder) / "1"), verbose=False)
    return folder


def mnist_images():
    """scikit-learn's bundled 8x8 digits drawn as MNIST's 28x28 images (each pixel 3x3, a 2-pixel
    border), in [0, 1], and their labels."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.pad(np.kron(digits.images, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2))) / 16.0
    return images.astype(np.float32), digits.target


def write_tensorflow_mnist(folder: Path) -> Path:
    """The seeds' ModelMesh example's `tensorflow/mnist.savedmodel`: a Keras softmax over the 784
    pixels of a 28x28 image holding a logistic regression's weights, fitted to `mnist_images()`."""
    from sklearn.linear_model import LogisticRegression

    from modelplane.runtimes.tensorflow import import_tensorflow

    import_tensorflow(nthread=1)
    import keras

    images, labels = mnist_images()
    regression = LogisticRegression(max_iter=200).fit(images.reshape(len(images), -1), labels)
    inputs = keras.Input(shape=(28, 28), name="image")
    layer = keras.layers.Dense(10, activation="softmax", name="probabilities")
    model = keras.Model(inputs, layer(keras.layers.Flatten()(inputs)))
    layer.set_weights([regression.coef_.T, regression.intercept_])
    model.export(str(_fresh(folder)), verbose=False)
    return folder


def _code(folder: Path, source: Path) -> Path:
    shutil.copy(source, _fresh(folder) / source.name)
    return folder


def main() -> None:
    from modelplane.storage.paths import pvc_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pvc-dir", type=Path, default=None, help="default: $MODELPLANE_PVC_DIR or ~/.modelplane/pvc"
    )
    args = parser.parse_args()
    root = (args.pvc_dir or pvc_dir()) / "examples"
    for folder in build_all(root):
        print(f"built {folder}")


if __name__ == "__main__":
    main()
