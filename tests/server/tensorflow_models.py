"""Small TensorFlow SavedModels with random weights, built by the tests that serve them.

dense   TF Serving's version layout: 1/ (scores x @ w), 2/ (scores 2 * x @ w), 3/ (no SavedModel yet)
        signatures serving_default (x [-1, 4] float32 -> scores [-1, 3] float32)
        and label (x -> label [-1] int64, the argmax of x @ w)
pair    two inputs, two outputs: a [-1, 3] float32, b [-1] int64 -> doubled = 2 * a, total = sum(a) + b
text    a string input: text [-1] string -> length [-1] int32 (bytes), upper_bytes [-1] string
examples     TF Serving's classify and regress, on serialized tf.Examples (`inputs` [-1] string) of
             features x (2 floats), k (an int64, 0 if absent) and tag (bytes, "" if absent), built
             as TF Serving's own test models are (tf.compat.v1's SignatureDef builders, which set
             the method names): serving_default classifies (classes [-1, 2] "neg"/"pos", scores the
             softmax of x @ EXAMPLE_WEIGHTS + k), regress regresses (outputs [-1, 1]: sum(x) + k +
             the length of tag), scores_only classifies without classes
examples_tf2 the same signatures (but scores_only) from a tf.Module, saved by TF2, whose signatures all
             say tensorflow/serving/predict
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS = np.random.default_rng(7).normal(size=(4, 3)).astype(np.float32)
EXAMPLE_WEIGHTS = np.array([[1.0, -1.0], [0.5, 2.0]], dtype=np.float32)


def write_models(root: Path) -> dict[str, Path]:
    from modelplane.runtimes.tensorflow import import_tensorflow

    tf = import_tensorflow(nthread=1)
    folders = {name: root / name for name in ("dense", "pair", "text", "examples", "examples_tf2")}
    _dense(tf, 1.0).save(folders["dense"] / "1")
    _dense(tf, 2.0).save(folders["dense"] / "2")
    (folders["dense"] / "3").mkdir()  # a version still being copied: no saved_model.pb yet
    (folders["dense"] / "notes").mkdir()  # not a version
    _pair(tf).save(folders["pair"])
    _text(tf).save(folders["text"])
    _save_examples_v1(tf, folders["examples"] / "1")
    _examples_v2(tf).save(folders["examples_tf2"])
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


def _example_features(tf, serialized):
    spec = {
        "x": tf.io.FixedLenFeature([2], tf.float32),
        "k": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "tag": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    return tf.io.parse_example(serialized, spec)


def _example_outputs(tf, serialized, weights):
    """classes, scores and the regression's outputs of a batch of serialized tf.Examples."""
    features = _example_features(tf, serialized)
    shift = tf.cast(features["k"], tf.float32)
    scores = tf.nn.softmax(tf.matmul(features["x"], weights) + shift[:, None])
    classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(serialized)[0], 1])
    lengths = tf.cast(tf.strings.length(features["tag"]), tf.float32)
    outputs = tf.reduce_sum(features["x"], axis=1) + shift + lengths
    return classes, scores, outputs


def _save_examples_v1(tf, folder: Path) -> None:
    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        classes, scores, outputs = _example_outputs(tf, serialized, tf.constant(EXAMPLE_WEIGHTS))
        signatures = {
            "serving_default": v1.saved_model.classification_signature_def(serialized, classes, scores),
            "regress": v1.saved_model.regression_signature_def(serialized, outputs[:, None]),
            "scores_only": v1.saved_model.classification_signature_def(serialized, None, scores),
        }
        with v1.Session(graph=graph) as session:
            builder = v1.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=signatures)
            builder.save()


def _examples_v2(tf) -> _Exported:
    module = tf.Module()
    module.w = tf.Variable(EXAMPLE_WEIGHTS)
    inputs_spec = tf.TensorSpec([None], tf.string, name="inputs")

    @tf.function(input_signature=[inputs_spec])
    def classify(inputs):
        classes, scores, _ = _example_outputs(tf, inputs, module.w)
        return {"classes": classes, "scores": scores}

    @tf.function(input_signature=[inputs_spec])
    def regress(inputs):
        return {"outputs": _example_outputs(tf, inputs, module.w)[2]}

    module.classify, module.regress = classify, regress
    return _Exported(tf, module, {"serving_default": classify, "regress": regress})
