"""Small Paddle inference models, saved by `paddle.jit.save` in processes of their own: Paddle's library
cannot be loaded into a process that has loaded TensorFlow's (it crashes), and which program format it
writes is settled as it is imported.

linear          paddle.nn.Linear(4, 3) with WEIGHTS and BIAS, x [-1, 4] float32 -> [-1, 3] float32, in
                Paddle 3's format (model.json, a PIR program, and model.pdiparams)
linear-pdmodel  the same layer in Paddle 2's format (model.pdmodel and model.pdiparams), which KServe's
                paddleserver loads
lookup          paddle.nn.Embedding(5, 2) with TABLE, in Paddle 3's format: ids [-1] int64 -> [-1, 2] float32
lookup-padded   paddle.nn.Embedding(5, 2, padding_idx=0) with TABLE (its row 0 answered as zeros), in Paddle 2's
                format: Paddle checks none of its ids
lookup-reshaped ids [-1, 2] int64, reshaped to [-1] on their way to the padded TABLE, in Paddle 2's format
lookup-cast     ids [-1] float32, cast to int64 on their way to the padded TABLE, in Paddle 3's format
pair            two inputs, in Paddle 3's format: a [-1, 2] float32, b [-1, 1] float32 -> linear(a) + b
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

WEIGHTS = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [-2.0, 1.0, 0.25], [0.0, 3.0, 1.0]], dtype=np.float32)
BIAS = np.array([0.1, -0.2, 0.3], dtype=np.float32)
TABLE = np.arange(10, dtype=np.float32).reshape(5, 2)
REPO_ROOT = Path(__file__).resolve().parents[2]
PDMODEL = {"linear-pdmodel", "lookup-padded", "lookup-reshaped"}  # the models saved in Paddle 2's format


def linear(rows) -> np.ndarray:
    """What the linear models answer for `rows`."""
    return np.asarray(rows, dtype=np.float32) @ WEIGHTS + BIAS


def write_models(
    root: Path,
    names: tuple[str, ...] = (
        "linear",
        "linear-pdmodel",
        "lookup",
        "lookup-padded",
        "lookup-reshaped",
        "lookup-cast",
    ),
) -> dict[str, Path]:
    """Saves the models named into subfolders of `root`, each program format by a process of its own."""
    by_format = {"pdmodel": [n for n in names if n in PDMODEL], "pir": [n for n in names if n not in PDMODEL]}
    builders = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.server.paddle_models", str(root), *chosen],
            cwd=REPO_ROOT,
            env={**os.environ, "FLAGS_enable_pir_api": "0" if program_format == "pdmodel" else "1"},
        )
        for program_format, chosen in by_format.items()
        if chosen
    ]
    for builder in builders:
        if builder.wait(timeout=300) != 0:
            raise RuntimeError(f"{builder.args} failed with {builder.returncode}")
    return {name: root / name for name in names}


def _save(root: Path, names: list[str]) -> None:
    import paddle
    from paddle.static import InputSpec

    def save(name: str, layer, *inputs: InputSpec) -> None:
        layer.eval()
        paddle.jit.save(layer, str(root / name / "model"), input_spec=list(inputs))

    class Pair(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.linear = paddle.nn.Linear(2, 1)

        def forward(self, a, b):
            return self.linear(a) + b

    class LookUpAfter(paddle.nn.Layer):
        """The padded table, looked up with the ids after `before` changed their shape or type."""

        def __init__(self, before):
            super().__init__()
            self.before = before
            self.lookup = paddle.nn.Embedding(*TABLE.shape, padding_idx=0)
            self.lookup.weight.set_value(TABLE)

        def forward(self, ids):
            return self.lookup(self.before(ids))

    for name in names:
        if name == "lookup-reshaped":
            save(
                name, LookUpAfter(lambda ids: paddle.reshape(ids, [-1])), InputSpec([None, 2], "int64", "ids")
            )
        elif name == "lookup-cast":
            save(
                name, LookUpAfter(lambda ids: paddle.cast(ids, "int64")), InputSpec([None], "float32", "ids")
            )
        elif name in ("linear", "linear-pdmodel"):
            layer = paddle.nn.Linear(4, 3)
            layer.weight.set_value(WEIGHTS)
            layer.bias.set_value(BIAS)
            save(name, layer, InputSpec([None, 4], "float32", "x"))
        elif name in ("lookup", "lookup-padded"):
            lookup = paddle.nn.Embedding(*TABLE.shape, padding_idx=0 if name == "lookup-padded" else None)
            lookup.weight.set_value(TABLE)
            save(name, lookup, InputSpec([None], "int64", "ids"))
        elif name == "pair":
            save(name, Pair(), InputSpec([None, 2], "float32", "a"), InputSpec([None, 1], "float32", "b"))


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    _save(Path(sys.argv[1]), sys.argv[2:])
