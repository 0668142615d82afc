"""Small TensorFlow SavedModels with random weights, built by the tests that serve them.

dense   TF Serving's version layout: 1/ (scores x @ w), 2/ (scores 2 * x @ w), 3/ (no SavedModel yet)
        signatures serving_default (x [-1, 4] float32 -> scores [-1, 3] float32)
        and label (x -> label [-1] int64, the argmax of x @ w)
pair    two inputs, two outputs: a [-1, 3] float32, b [-1] int64 -> doubled = 2 * a, total = sum(a) + b
text    a string input: text [-1] string -> length [-1] int32 (bytes), upper_bytes [-1] string
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS = np.random.default_rng(7).normal(size=(4, 3)).astype(np.float32)


def write_models(root: Path) -> dict[str, Path]:
    from modelplane.runtimes.tensorflow import import_tensorflow

    tf = import_tensorflow(nthread=1)
    folders = {"dense": root / "dense", "pair": root / "pair", "text": root / "text"}
    _dense(tf, 1.0).save(folders["dense"] / "1")
    _dense(tf, 2.0).save(folders["dense"] / "2")
    (folders["dense"] / "3").mkdir()  # a version still being copied: no saved_model.pb yet
    (folders["dense"] / "notes").mkdir()  # not a version
    _pair(tf).save(folders["pair"])
    _text(tf).save(folders["text"])
    return folders


class _Exported:
    def __init__(self, tf, module, signatures: dict):
        self.tf, self.module, self.signatures = tf, module, signatures

    def save(self, folder: Path) -> None:
        self.tf.saved_model.save(self.module, str(folder), signatures=self.signatures)


def _dense(tf, scale: float) -> _Exported:
    module = tf.Module()
    module.w = tf.Variable(WEIGHTS)
    x_spec = tf.TensorSpec([None, 4], tf.float32, name="x")

    @tf.function(input_signature=[x_spec])
    def scores(x):
        return {"scores": tf.matmul(x, module.w) * scale}

    @tf.function(input_signature=[x_spec])
    def label(x):
        return {"label": tf.argmax(tf.matmul(x, module.w), axis=1)}

    module.scores, module.label = scores, label
    return _Exported(tf, module, {"serving_default": scores, "label": label})


def _pair(tf) -> _Exported:
    module = tf.Module()

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 3], tf.float32, name="a"),
            tf.TensorSpec([None], tf.int64, name="b"),
        ]
    )
    def serve(a, b):
        return {"doubled": a * 2.0, "total": tf.reduce_sum(a, axis=1) + tf.cast(b, tf.float32)}

    module.serve = serve
    return _Exported(tf, module, {"serving_default": serve})


def _text(tf) -> _Exported:
    module = tf.Module()

    text_spec = tf.TensorSpec([None], tf.string, name="text")

    @tf.function(input_signature=[text_spec])
    def serve(text):
        return {"length": tf.strings.length(text), "upper_bytes": tf.strings.upper(text)}

    @tf.function(input_signature=[text_spec])
    def count(text):
        return {"count": tf.size(text)}

    module.serve, module.count = serve, count
    return _Exported(tf, module, {"serving_default": serve, "count": count})
