"""Small Paddle inference models, saved by `paddle.jit.save` in processes of their own: Paddle's library
cannot be loaded into a process that has loaded TensorFlow's (it crashes), and which program format it
writes is settled as it is imported.

linear          paddle.nn.Linear(4, 3) with WEIGHTS and BIAS, x [-1, 4] float32 -> [-1, 3] float32, in
                Paddle 3's format (model.json, a PIR program, and model.pdiparams)
linear-pdmodel  the same layer in Paddle 2's format (model.pdmodel and model.pdiparams), which KServe's
                paddleserver loads
lookup          paddle.nn.Embedding(5, 2) with TABLE, in Paddle 3's format: ids [-1] int64 -> [-1, 2] float32
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


def linear(rows) -> np.ndarray:
    """What the linear models answer for `rows`."""
    return np.asarray(rows, dtype=np.float32) @ WEIGHTS + BIAS


def write_models(root: Path) -> dict[str, Path]:
    """Saves the models into subfolders of `root`, each format by a process of its own."""
    builders = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.server.paddle_models", str(root), program_format],
            cwd=REPO_ROOT,
            env={**os.environ, "FLAGS_enable_pir_api": "1" if program_format == "pir" else "0"},
        )
        for program_format in ("pir", "pdmodel")
    ]
    for builder in builders:
        if builder.wait(timeout=300) != 0:
            raise RuntimeError(f"{builder.args} failed with {builder.returncode}")
    return {name: root / name for name in ("linear", "linear-pdmodel", "lookup")}


def _save(root: Path, program_format: str) -> None:
    import paddle
    from paddle.static import InputSpec

    layer = paddle.nn.Linear(4, 3)
    layer.weight.set_value(WEIGHTS)
    layer.bias.set_value(BIAS)
    layer.eval()
    name = "linear" if program_format == "pir" else "linear-pdmodel"
    paddle.jit.save(layer, str(root / name / "model"), input_spec=[InputSpec([None, 4], "float32", "x")])
    if program_format == "pir":
        lookup = paddle.nn.Embedding(*TABLE.shape)
        lookup.weight.set_value(TABLE)
        lookup.eval()
        paddle.jit.save(
            lookup, str(root / "lookup" / "model"), input_spec=[InputSpec([None], "int64", "ids")]
        )


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    _save(Path(sys.argv[1]), sys.argv[2])
