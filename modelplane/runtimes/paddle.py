"""PaddlePaddle inference models (`*.pdmodel` or Paddle 3's `*.json`, with `*.pdiparams`), run by Paddle's
CPU predictor as KServe's paddleserver runs them: the request (V1 `instances`, or the first V2 input)
goes to the model's first input and the answer is its first output (V1 `predictions`, V2 `output-0`, the
name V2 metadata gives it too).
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from modelplane.protocol.datatypes import numpy_dtype
from modelplane.protocol.errors import InferenceError, InvalidInput
from modelplane.protocol.v2 import InferRequest, InferResponse, output_from_array
from modelplane.runtimes.base import INLINE_ELEMENTS, require, v1_instance_list, warn_if_batch_rows_given
from modelplane.runtimes.native_signals import signal_actions_kept
from modelplane.runtimes.paddle_program import TensorSpec, declared_program, find_paddle_files
from modelplane.server.model import Model

_import_lock = threading.Lock()
# The error class that starts Paddle's message, as its two program formats write it.
_ERROR_CLASS = re.compile(r"^(\(\w+\) |\w+Error: )")
# What KServe's paddleserver names the one output it answers, in V2.
OUTPUT_NAME = "output-0"


class PaddleModel(Model):
    reads_parameters = frozenset()

    def __init__(self, name: str, model_dir: str | Path, nthread: int = 1, max_batch_rows: int | None = None):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.nthread = nthread
        warn_if_batch_rows_given(name, "Paddle", max_batch_rows)
        self._predictor: Any = None
        self._inputs: list[dict] = []  # V2 metadata
        self._outputs: list[dict] = []
        self._feed_dtype = np.dtype(np.float32)  # the first input's
        self._id_limit: int | None = None  # rows of the embedding tables the first input indexes
        # Paddle's predictor is not safe to run from two threads at once.
        self._lock = asyncio.Lock()

    def load(self) -> bool:
        paddle = import_paddle()
        files = find_paddle_files(self.model_dir)
        config = paddle.inference.Config(str(files.program), str(files.params))
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(self.nthread)
        config.disable_glog_info()
        predictor = paddle.inference.create_predictor(config)
        names = predictor.get_input_names()
        if len(names) != 1:
            # Its other inputs would never be fed: every request would fail, or read what they last held.
            raise ValueError(
                f"{files.program.name} takes {len(names)} inputs ({', '.join(names)}): the paddle runtime "
                "feeds a request to a model's one input, as KServe's paddleserver does"
            )
        declared = declared_program(paddle, files)
        self._inputs = [_metadata(name, name, declared.tensors) for name in names]
        # The one output the answer has, under the name it has there.
        first_output = predictor.get_output_names()[0]
        self._outputs = [_metadata(OUTPUT_NAME, first_output, declared.tensors)]
        self._id_limit = declared.id_limits.get(names[0])
        feed_datatype = self._inputs[0]["datatype"] if self._inputs else "FP32"
        self._feed_dtype = np.float32 if feed_datatype in ("BYTES", "BF16") else numpy_dtype(feed_datatype)
        self._predictor = predictor
        self.ready = True
        return True

    def stop(self) -> None:
        self._predictor = None

    def get_input_types(self) -> list[dict]:
        return self._inputs

    def get_output_types(self) -> list[dict]:
        return self._outputs

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            result = await self._run(self._input_array(payload.inputs[0].as_numpy()))
            return InferResponse(payload.id, self.name, [output_from_array(OUTPUT_NAME, result)])
        result = await self._run(self._input_array(v1_instance_list(payload)))
        return {"predictions": result}

    def _input_array(self, data: Any) -> np.ndarray:
        """The request as the model's first input takes it: of its datatype (KServe's paddleserver
        always sends float32, the type of nearly every Paddle model's input)."""
        try:
            array = np.asarray(data, dtype=self._feed_dtype)
        except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: 1e19 as an int64 id
            kind = self._feed_dtype.name
            raise InvalidInput(
                f"the input does not fit model {self.name}: not an array of {kind}: {exc}"
            ) from None
        if array.size == 0:
            raise InvalidInput(f"the input to model {self.name} is empty")
        if self._id_limit is not None:
            self._check_ids(array, self._id_limit)
        return array

    def _check_ids(self, ids: np.ndarray, rows: int) -> None:
        """Refuses ids outside the embedding tables the input indexes, which Paddle does not always
        refuse: it answers whatever memory an id of -1 (or, where a table has a padding row, any id
        outside it) points at, or crashes the process."""
        inside = (ids >= 0) & (ids < rows)  # a NaN (a float input cast to ids) is not
        if inside.all():
            return
        outside = ids[~inside].flat[0]
        raise InvalidInput(
            f"the input does not fit model {self.name}: input {self._inputs[0]['name']} indexes an "
            f"embedding table of {rows} rows: expected >= 0 and < {rows}, but got {outside}"
        )

    async def _run(self, array: np.ndarray) -> np.ndarray:
        if self._predictor is None:
            raise InferenceError(f"model {self.name} is unloaded")
        async with self._lock:
            try:
                if array.size <= INLINE_ELEMENTS:
                    return self._run_predictor(array)
                return await asyncio.to_thread(self._run_predictor, array)
            except (ValueError, IndexError, TypeError) as exc:
                # Paddle raises ValueError for an InvalidArgument (a shape or type the program
                # cannot take), IndexError for an OutOfRange.
                raise InvalidInput(
                    f"the input does not fit model {self.name}: {paddle_message(exc)}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - the program's own failure
                raise InferenceError(
                    f"model {self.name} failed: {type(exc).__name__}: {paddle_message(exc)}"
                ) from None

    def _run_predictor(self, array: np.ndarray) -> np.ndarray:
        predictor = self._predictor
        feed = predictor.get_input_handle(predictor.get_input_names()[0])
        feed.reshape(list(array.shape))
        feed.copy_from_cpu(np.ascontiguousarray(array))
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


def import_paddle() -> Any:
    """Paddle, imported without its notice that no ccache is installed (it compiles nothing here) and
    with the server's SIGTERM and SIGINT handlers kept (native_signals.py). Refused in a process that has
    TensorFlow: loading Paddle's library after TensorFlow's crashes the process (a segmentation fault),
    which would take every model it serves down with it."""
    if "paddle" not in sys.modules and "tensorflow" in sys.modules:
        raise RuntimeError(
            "Paddle cannot be loaded into a server that has loaded TensorFlow (the process would crash); "
            "serve Paddle models and TensorFlow models from separate servers"
        )
    # One import at a time: a second thread's signal actions, saved while the first was importing,
    # would be Paddle's.
    with _import_lock, warnings.catch_warnings(), signal_actions_kept(signal.SIGTERM, signal.SIGINT):
        warnings.filterwarnings("ignore", message="No ccache found")
        return require("paddle", "paddle")


def paddle_message(exc: BaseException) -> str:
    """What went wrong, from Paddle's error: without the "In user code:" preamble, the error class it
    names and its [Hint: ...] and [operator ...] lines."""
    for line in str(exc).splitlines():
        line = line.strip()
        if not line or line.startswith(("In user code", "[Hint", "[operator")):
            continue
        return _ERROR_CLASS.sub("", line)
    return type(exc).__name__


def _metadata(name: str, declared_name: str, declared: dict[str, TensorSpec]) -> dict:
    tensor = declared.get(declared_name, TensorSpec([-1], "FP32"))
    return {"name": name, "datatype": tensor.datatype, "shape": tensor.shape}
