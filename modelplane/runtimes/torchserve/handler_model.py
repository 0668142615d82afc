"""One model of a TorchServe store, served by its own handler through TorchServe's Python handler API.

Requests become the rows a handler's `handle(data, context)` takes, as KServe's TorchServe integration
(its `kserve` and `kservev2` request envelopes) makes them:

- V1 `{"instances": [...]}`: each instance is a row (`{"data": "<base64>"}`, or any JSON value), and the
  handler's results are the `predictions`. A body that is not JSON (an image, say) is one row
  `{"body": <bytes>}`.
- V2 (REST or gRPC): each input is a row `{"name", "shape", "datatype", "data"}`; BYTES data is its first
  element (a string when the request carried JSON, bytes when it carried binary data), other data a
  nested list. Each result is an output named after its input, its values flattened.
- `:explain` calls the handler with the `explain` header set, and answers `{"explanations": ...}`.

Rows of concurrent requests share one handler call up to the model's `batchSize`, waiting at most its
`maxBatchDelay` (modelplane.server.batching). Each of the model's workers is a handler instance of its
own, loaded once; a call goes to an idle one (workers.py).
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import importlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from modelplane.protocol.errors import InferenceError, InvalidInput, ModelStatusError
from modelplane.protocol.v2 import InferInput, InferRequest, InferResponse, output_from_array
from modelplane.runtimes.base import last_line, require
from modelplane.runtimes.torchserve.archive import open_archive
from modelplane.runtimes.torchserve.store import ModelStore, StoreModel
from modelplane.runtimes.torchserve.workers import InputNotTaken, Worker
from modelplane.server.model import Model

logger = logging.getLogger("modelplane.server")
# A handler's own metrics (context.metrics) are kept, not logged line by line per request.
logging.getLogger("ts.metrics").setLevel(logging.WARNING)

# Exceptions of Pillow's a handler raises when the request's picture cannot be read: the client's
# mistake, a 400 (as is text that is not base64).
_UNREADABLE_PICTURE = ("UnidentifiedImageError", "DecompressionBombError")


def _unreadable_picture(exc: Exception) -> bool:
    """Whether Pillow could not decode the picture: not one at all, too large, or cut short (Pillow
    says so with a plain OSError)."""
    return type(exc).__name__ in _UNREADABLE_PICTURE or (
        isinstance(exc, OSError) and _raised_in(exc).startswith("PIL.")
    )


def _raised_in(exc: Exception) -> str:
    """The name of the module whose code raised `exc`."""
    traceback = exc.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    return traceback.tb_frame.f_globals.get("__name__", "") if traceback is not None else ""


@dataclass
class Row:
    """One item of a handler's batch, and the headers of the request it came from."""

    data: Any
    headers: dict[str, str] = field(default_factory=dict)


class TorchServeModel(Model):
    """A model version of a TorchServe store: its `.mar` unpacked, its handler loaded per worker."""

    reads_parameters = frozenset()  # a handler is given its rows' data and headers only

    def __init__(self, entry: StoreModel, store: ModelStore, nthread: int | None = None):
        super().__init__(entry.name)
        self.entry = entry
        self.store = store
        self.nthread = nthread  # torch's threads in this process (`--nthread`), None: torch's own
        self.version = entry.version
        self._folder: Path | None = None
        self._manifest: dict = {}
        self._workers: list[Worker] = []
        self._idle: asyncio.Queue | None = None
        self._batcher: Any = None

    # -- loading ----------------------------------------------------------------------------------

    def load(self) -> bool:
        require("ts", "torchserve")
        torch = require("torch", "pytorch")
        if self.nthread:
            torch.set_num_threads(self.nthread)
        folder = Path(tempfile.mkdtemp(prefix=f"modelplane-mar-{self.name}-"))
        self._folder = folder
        self._manifest = open_archive(self.entry.archive, folder)
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        for worker in range(self.entry.workers):
            self._workers.append(
                Worker(self._load_service(gpu_id=worker % gpus if gpus else None), self.name)
            )
        self.ready = True
        return True

    def _load_service(self, gpu_id: int | None) -> Any:
        from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl
        from ts.model_loader import TsModelLoader

        metrics = MetricsCacheYamlImpl(
            str(Path(importlib.import_module("ts").__file__).parent / "configs" / "metrics.yaml")
        )
        metrics.initialize_cache()
        metrics.model_name = self.name
        assert self._folder is not None
        with _imports_from(self._folder):
            return TsModelLoader().load(
                self.name,
                str(self._folder),
                self._manifest["model"]["handler"],
                gpu_id,
                self.entry.batch_size,
                None,
                self.store.limit_max_image_pixels,
                metrics,
            )

    def stop(self) -> None:
        self._workers.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    # -- requests ---------------------------------------------------------------------------------

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        headers = headers or {}
        if isinstance(payload, InferRequest):
            rows = [Row(_v2_row(item), headers) for item in payload.inputs]
            results = await self._rows(rows)
            outputs = [
                _v2_output(item.name, result) for item, result in zip(payload.inputs, results, strict=True)
            ]
            return InferResponse(payload.id, self.name, outputs, model_version=self.version)
        rows = [Row(data, headers) for data in _v1_rows(payload)]
        return {"predictions": await self._rows(rows)}

    async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        headers = {**(headers or {}), "explain": "True"}
        if isinstance(payload, InferRequest):
            rows = [Row(_v2_row(item), headers) for item in payload.inputs]
        else:
            rows = [Row(data, headers) for data in _v1_rows(payload)]
        # A handler decides on explaining from its first row's headers: such rows go alone.
        return {"explanations": await self._call(rows)}

    async def _rows(self, rows: list[Row]) -> list:
        if self.entry.batch_size <= 1:
            return await self._call(rows)
        if self._batcher is None:
            from modelplane.server.batching import Batcher

            self._batcher = Batcher(self._call, self.entry.batch_size, self.entry.max_batch_delay)
        return await self._batcher.submit(rows)

    async def _call(self, rows: list[Row]) -> list:
        """One call of an idle worker's handler over `rows`, on a thread."""
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self._workers:
                for _slot in range(worker.slots):
                    self._idle.put_nowait(worker)
        worker = await self._idle.get()
        call = asyncio.ensure_future(asyncio.to_thread(self._handle, worker, rows))
        call.add_done_callback(lambda _: self._idle.put_nowait(worker))
        try:
            return await asyncio.wait_for(asyncio.shield(call), self.entry.response_timeout)
        except TimeoutError:
            raise ModelStatusError(
                f"model {self.name} did not answer within its responseTimeout of "
                f"{self.entry.response_timeout:g} s",
                504,
            ) from None

    def _handle(self, worker: Worker, rows: list[Row]) -> list:
        from ts.context import RequestProcessor
        from ts.utils.util import PredictionException

        context = worker.new_context()
        request_ids = {index: row.headers.get("x-request-id", str(index)) for index, row in enumerate(rows)}
        context.request_ids = request_ids
        context.request_processor = [RequestProcessor(dict(row.headers)) for row in rows]
        context.metrics.request_ids = request_ids
        whole = any(
            row.headers.get("explain") == "True" or row.headers.get("describe") == "True" for row in rows
        )
        try:
            results = worker.run([row.data for row in rows], context, whole=whole)
        except PredictionException as exc:
            raise ModelStatusError(f"model {self.name}: {exc.message}", exc.error_code) from None
        except MemoryError:
            logger.exception("the handler of model %s ran out of memory", self.name)
            # TorchServe's answer to a worker out of memory: 507 "Out of resources".
            raise ModelStatusError(f"model {self.name}: Out of resources", 507) from None
        except InputNotTaken as not_taken:
            exc = not_taken.__cause__
            refusal = self._unreadable(exc) or InvalidInput(
                f"model {self.name} cannot take the input: {_described(exc)}"
            )
            raise refusal from None
        except Exception as exc:  # noqa: BLE001 - the handler's own failure, reported with its message
            refusal = self._unreadable(exc)
            if refusal is not None:
                raise refusal from None
            logger.exception("the handler of model %s failed", self.name)
            raise InferenceError(f"the handler of model {self.name} failed: {_described(exc)}") from None
        for index in range(len(rows)):
            code, phrase = context.get_response_status(index)
            if code and code != 200:
                raise ModelStatusError(
                    f"model {self.name}: {phrase or 'the handler refused the request'}", code
                )
        if not isinstance(results, list) or len(results) != len(rows):
            got = f"{len(results)} results" if isinstance(results, list) else type(results).__name__
            raise InferenceError(f"the handler of model {self.name} returned {got} for {len(rows)} inputs")
        return results

    def _unreadable(self, exc: Exception) -> InvalidInput | None:
        """The 400 for a handler's failure to read the request's data, where that is what `exc` is."""
        if isinstance(exc, binascii.Error | UnicodeDecodeError | orjson.JSONDecodeError):
            return InvalidInput(f"model {self.name} cannot read the input: {exc}")
        if _unreadable_picture(exc):
            return InvalidInput(f"model {self.name} cannot read the input as a picture: {exc}")
        if isinstance(exc, ValueError) and _raised_in(exc) == "base64":  # text that is not ASCII
            return InvalidInput(f"model {self.name} cannot read the input as base64: {exc}")
        return None


def _described(exc: Exception) -> str:
    """`Type: message` of a handler's exception, its message's last line (the log has the rest): a
    TorchScript program's error starts with the interpreter's traceback, and ends with the error
    named."""
    line = last_line(exc)
    named = f"{type(exc).__name__}: "
    return line if line.startswith(named) else named + line


def _v1_rows(payload: Any) -> list:
    if isinstance(payload, bytes | bytearray | memoryview):
        return [{"body": bytes(payload)}]
    if not isinstance(payload, dict):
        raise InvalidInput('a V1 request must be a JSON object with "instances"')
    instances = payload.get("instances", payload.get("inputs"))
    if not isinstance(instances, list) or not instances:
        raise InvalidInput('the request needs "instances": a non-empty list')
    return instances


def _v2_row(item: InferInput) -> dict:
    array = item.as_numpy()
    if item.datatype == "BYTES":
        first = array.reshape(-1)[0] if array.size else b""
        data: Any = (
            first.decode("utf-8", "surrogateescape") if item.from_json and isinstance(first, bytes) else first
        )
    else:
        data = array.tolist()
    return {"name": item.name, "shape": list(item.shape), "datatype": item.datatype, "data": data}


def _v2_output(name: str, result: Any):
    """A handler's result as KServe's kservev2 envelope writes it: flattened, named after the input.
    Objects (a classifier's label scores, say) become JSON text in a BYTES tensor."""
    try:
        if isinstance(result, dict | str | bytes):
            return output_from_array(name, np.array([_text(result)], dtype=np.object_))
        array = np.asarray(result)
        if array.dtype.kind == "O":
            array = np.array([_text(value) for value in array.reshape(-1)], dtype=np.object_)
    except orjson.JSONEncodeError as exc:
        raise InferenceError(
            f"the handler's result for input {name!r} cannot be sent as JSON text: {exc}"
        ) from None
    return output_from_array(name, array.reshape(-1))


def _text(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


@contextlib.contextmanager
def _imports_from(folder: Path) -> Iterator[None]:
    """Imports the handler and model code of one archive from its folder.

    Archives often share module names (`handler`, `model`), and one process serves them all, so
    the modules of an archive are imported fresh from its own folder and taken out of `sys.modules`
    afterwards; the objects made from them keep them alive."""
    own_names = {path.stem for path in folder.glob("*.py")} | {
        path.name for path in folder.iterdir() if (path / "__init__.py").is_file()
    }
    shadowed = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] in own_names}
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] in own_names]:
            module = sys.modules[name]
            origin = getattr(module, "__file__", None) or ""
            if origin.startswith(str(folder)):
                del sys.modules[name]
        sys.modules.update(shadowed)
