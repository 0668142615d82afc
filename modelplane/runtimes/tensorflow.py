"""TensorFlow SavedModels, served from their signatures (`saved_model.pb`, or TF Serving's numbered
version folders, of which the highest is served).

V1 speaks TF Serving's REST predict format (tensorflow_json.py), and its classify and regress, which
read tf.Example inputs (tensorflow_examples.py); V2 takes the signature's inputs by name and answers with
its outputs under their own names. A request picks a signature with
`signature_name` (V1: in the body, as TF Serving reads it; V2: a request parameter); the default is
`serving_default`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modelplane.protocol.errors import InferenceError, InvalidInput
from modelplane.protocol.v2 import InferRequest, InferResponse, output_from_array
from modelplane.runtimes import tensorflow_examples, tensorflow_json, tensorflow_metadata
from modelplane.runtimes.base import INLINE_ELEMENTS, require, warn_if_batch_rows_given
from modelplane.runtimes.tensorflow_layout import locate_saved_model
from modelplane.runtimes.tensorflow_signature import DEFAULT_SIGNATURE, Signature
from modelplane.server.model import Model

logger = logging.getLogger("modelplane.server")

# What TensorFlow writes on stderr while it is imported, whatever TF_CPP_MIN_LOG_LEVEL says.
_IMPORT_NOTICES = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"oneDNN custom operations are on",
)
_import_lock = threading.Lock()
# A signature whose last call took longer keeps even its small inputs off the event loop.
INLINE_SECONDS = 0.002


class TensorFlowModel(Model):
    platform = "tensorflow_savedmodel"
    reads_parameters = frozenset({"signature_name"})
    example_verbs = frozenset(tensorflow_examples.VERBS)

    def __init__(self, name: str, model_dir: str | Path, nthread: int = 1, max_batch_rows: int | None = None):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.nthread = nthread
        warn_if_batch_rows_given(name, "TensorFlow", max_batch_rows)
        self._tf: Any = None
        self._saved_model: Any = None
        self._signatures: dict[str, Signature] = {}
        self._signature_defs: dict = {}  # as TF Serving's metadata prints them
        self._call_seconds: dict[str, float] = {}  # each signature's last call
        self._version_from_folder = False  # whether `version` is the served folder's (not --model-version)

    def load(self) -> bool:
        location = locate_saved_model(self.model_dir)
        tf = import_tensorflow(self.nthread)
        saved_model = tf.saved_model.load(str(location.folder))
        signatures = {name: Signature.of(name, function) for name, function in saved_model.signatures.items()}
        if not signatures:
            raise ValueError(
                f"the SavedModel in {location.folder} has no signatures to serve; "
                "export it with tf.saved_model.save(..., signatures=...) or Keras' model.export()"
            )
        self._tf, self._saved_model, self._signatures = tf, saved_model, signatures
        self._signature_defs = tensorflow_metadata.signature_defs(location.folder)
        self._call_seconds = {}
        self._report_version(location.version)
        logger.info(
            "model %s: SavedModel %s%s, signatures %s",
            self.name,
            location.folder,
            "" if location.version is None else f" (version {location.version})",
            ", ".join(sorted(signatures)),
        )
        self.ready = True
        return True

    def _report_version(self, number: int | None) -> None:
        """The served version folder's number is the model's version, unless --model-version set one."""
        if getattr(self, "version", None) is not None and not self._version_from_folder:
            return
        self.version = None if number is None else str(number)
        self._version_from_folder = number is not None

    def stop(self) -> None:
        self._saved_model, self._signatures = None, {}

    def get_input_types(self) -> list[dict]:
        signature = self._metadata_signature()
        return [info.metadata() for info in signature.inputs] if signature else []

    def get_output_types(self) -> list[dict]:
        signature = self._metadata_signature()
        return [info.metadata() for info in signature.outputs] if signature else []

    def v1_status(self) -> dict:
        return tensorflow_metadata.model_status(self.version)

    def v1_metadata(self) -> dict:
        return tensorflow_metadata.model_metadata(self.name, self.version, self._signature_defs)

    def _metadata_signature(self) -> Signature | None:
        """The default signature; without one, the first by name."""
        if not self._signatures:
            return None
        return self._signatures.get(DEFAULT_SIGNATURE) or self._signatures[min(self._signatures)]

    def signature(self, name: str | None) -> Signature:
        name = name or DEFAULT_SIGNATURE
        found = self._signatures.get(name)
        if found is None:
            raise InvalidInput(
                f"model {self.name} has no signature {name!r}; its signatures are: "
                f"{', '.join(sorted(self._signatures))}"
            )
        return found

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            return await self._predict_v2(payload)
        if isinstance(payload, (bytes, bytearray)):
            payload = tensorflow_json.read_body(payload, (headers or {}).get("content-type", ""))
        if not isinstance(payload, dict):
            raise InvalidInput('a V1 request must be a JSON object with "instances" or "inputs"')
        signature = self.signature(tensorflow_json.signature_name(payload))
        arrays, row_format = tensorflow_json.decode_request(payload, signature.inputs)
        for info in signature.inputs:
            signature.check_shape(info, arrays[info.name])
        results = await self._run(signature, arrays)
        return tensorflow_json.encode_response(results, row_format)

    async def classify(self, payload: Any, headers: dict[str, str] | None = None) -> dict:
        """TF Serving's Classify: `{"results": [[[label, score], ...], ...]}`, one list per example."""
        batch = self._example_batch(payload, headers, tensorflow_examples.CLASSIFY)
        signature = tensorflow_examples.signature_of(self._signatures, batch.signature_name)
        tensorflow_examples.check_classification(signature, lambda: self._signature_def_text(signature))
        outputs = await self._run_examples(signature, batch)
        return {"results": tensorflow_examples.classification_results(outputs, len(batch.serialized))}

    async def regress(self, payload: Any, headers: dict[str, str] | None = None) -> dict:
        """TF Serving's Regress: `{"results": [value, ...]}`, one value per example."""
        batch = self._example_batch(payload, headers, tensorflow_examples.REGRESS)
        signature = tensorflow_examples.signature_of(self._signatures, batch.signature_name)
        tensorflow_examples.check_regression(signature, lambda: self._signature_def_text(signature))
        outputs = await self._run_examples(signature, batch)
        return {"results": tensorflow_examples.regression_results(outputs, len(batch.serialized))}

    def _example_batch(
        self, payload: Any, headers: dict[str, str] | None, verb: str
    ) -> tensorflow_examples.ExampleBatch:
        """The examples of a REST body (JSON, or bytes the server left unparsed) or of a gRPC call."""
        if isinstance(payload, tensorflow_examples.ExampleBatch):
            return payload
        if isinstance(payload, (bytes, bytearray)):
            payload = tensorflow_json.read_body(payload, (headers or {}).get("content-type", ""))
        return tensorflow_examples.read_json_request(payload, verb)

    def _signature_def_text(self, signature: Signature) -> str:
        return tensorflow_metadata.signature_def_text(self._signature_defs, signature.name)

    async def _run_examples(
        self, signature: Signature, batch: tensorflow_examples.ExampleBatch
    ) -> dict[str, np.ndarray]:
        if not batch.serialized:
            raise InvalidInput("Input is empty.")
        serialized = np.empty(len(batch.serialized), dtype=np.object_)
        serialized[:] = batch.serialized
        return await self._run(signature, {tensorflow_examples.INPUTS: serialized})

    async def _predict_v2(self, request: InferRequest) -> InferResponse:
        name = (request.parameters or {}).get("signature_name")
        if name is not None and not isinstance(name, str):
            raise InvalidInput(f"the signature_name parameter must be a string, got {name!r}")
        signature = self.signature(name)
        results = await self._run(signature, signature.v2_arrays(request.inputs))
        outputs = [output_from_array(name, value) for name, value in results.items()]
        return InferResponse(request.id, self.name, outputs)

    async def _run(self, signature: Signature, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The signature's outputs, in its order. A small input runs on the event loop if the
        signature's last call was quick; anything else on a worker thread (a short string can
        still feed a large network, so the input's size alone does not tell)."""
        small = sum(array.size for array in arrays.values()) <= INLINE_ELEMENTS
        try:
            if small and self._call_seconds.get(signature.name, INLINE_SECONDS) < INLINE_SECONDS:
                return self._call(signature, arrays)
            return await asyncio.to_thread(self._call, signature, arrays)
        except self._tf.errors.InvalidArgumentError as exc:
            raise InvalidInput(
                f"signature {signature.name!r} of model {self.name} refused the input: {_op_message(exc)}"
            ) from None
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"the input does not fit signature {signature.name!r} of model {self.name}: {exc}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - TensorFlow's own failure
            message = _op_message(exc) if isinstance(exc, self._tf.errors.OpError) else str(exc)
            raise InferenceError(f"model {self.name} failed: {type(exc).__name__}: {message}") from None

    def _call(self, signature: Signature, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = self._tf
        tensors = {
            info.name: tf.constant(arrays[info.name], dtype=tf.dtypes.as_dtype(info.dtype))
            for info in signature.inputs
        }
        started = time.perf_counter()
        results = signature.function(**tensors)
        outputs = {info.name: results[info.name].numpy() for info in signature.outputs}
        self._call_seconds[signature.name] = time.perf_counter() - started
        return outputs


def _op_message(exc: Exception) -> str:
    """A TensorFlow op error's own words, without the graph's node and stack lines around them (the
    line naming the node is followed, for a TF1 graph, by the indented Python lines that defined it)."""
    message = getattr(exc, "message", None) or str(exc)
    lines, in_stack = [], False
    for line in message.splitlines():
        in_stack = line.startswith("Detected at node") or (in_stack and (not line or line[0].isspace()))
        text = line.strip()
        if text and not in_stack and not text.startswith(("Graph execution error", "<stack traces", "[[")):
            lines.append(text)
    return " ".join(lines) or message


def import_tensorflow(nthread: int) -> Any:
    """TensorFlow, running `nthread` threads per op and between ops. Its C++ code logs errors only,
    unless TF_CPP_MIN_LOG_LEVEL says otherwise; the notices it prints on import whatever that level
    says are dropped, unless the level is 0 (everything)."""
    with _import_lock:
        _load_triton_first()
        if "tensorflow" in sys.modules:
            tf = sys.modules["tensorflow"]
        elif os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2") == "0":
            tf = require("tensorflow", "tensorflow")
        else:
            with _stderr_without(_IMPORT_NOTICES):
                tf = require("tensorflow", "tensorflow")
        _set_threads(tf, nthread)
    return tf


def _load_triton_first() -> None:
    """Loads OpenAI's triton (which CUDA builds of torch bring, and torch loads lazily) before
    TensorFlow: loaded after TensorFlow in the same process, triton crashes it (SIGSEGV, seen with
    tensorflow-cpu 2.21 and triton 3.8). Models of both frameworks can then share a server."""
    if "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None:
        importlib.import_module("triton")


def _set_threads(tf: Any, nthread: int) -> None:
    threading_config = tf.config.threading
    current = (
        threading_config.get_intra_op_parallelism_threads(),
        threading_config.get_inter_op_parallelism_threads(),
    )
    if current == (nthread, nthread):
        return
    try:
        threading_config.set_intra_op_parallelism_threads(nthread)
        threading_config.set_inter_op_parallelism_threads(nthread)
    except RuntimeError:  # TensorFlow's runtime started already: its thread pools are fixed
        logger.warning(
            "TensorFlow already runs with %s threads (intra-op, inter-op), not %d", current, nthread
        )


@contextlib.contextmanager
def _stderr_without(notices: tuple[bytes, ...]) -> Iterator[None]:
    """Passes on what is written to file descriptor 2 meanwhile, less the lines holding a notice
    (TensorFlow's C++ code writes there directly, past Python's sys.stderr)."""
    sys.stderr.flush()
    try:
        original = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy() -> None:
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(os.dup(original), "wb") as target:
            for line in pipe:
                if not any(notice in line for notice in notices):
                    target.write(line)
                    target.flush()

    copier = threading.Thread(target=copy, name="tensorflow-import-stderr", daemon=True)
    copier.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last writer closes, so the copier reads to the end
        copier.join()
        os.close(original)
