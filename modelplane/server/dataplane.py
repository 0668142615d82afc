"""What the REST and gRPC servers share: running a request through a model, and the model catalogue."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from modelplane import __version__
from modelplane.protocol.errors import ModelNotFound, ModelplaneError, RequestTimedOut
from modelplane.protocol.model_schema import ModelSchema, check_inputs
from modelplane.protocol.v2 import InferRequest
from modelplane.protocol.v2_parameters import request_timeout
from modelplane.server import metrics
from modelplane.server.repository import ModelRepository, ServedModel
from modelplane.server.request_batching import BatchSettings, ModelBatcher
from modelplane.telemetry import tracing

SERVER_NAME = "modelplane"
EXTENSIONS = ["model_repository_extension", "binary_tensor_data", "classification"]


class DataPlane:
    def __init__(self, repository: ModelRepository, batching: BatchSettings | None = None):
        self.repository = repository
        self.batching = batching
        self._batching_stopped = False
        # The batcher of each model, with the loaded model it was made for.
        self._batchers: dict[str, tuple[ServedModel, ModelBatcher]] = {}

    async def run(
        self, served: ServedModel, payload: Any, headers: dict[str, str], verb: str = "predict"
    ) -> tuple[Any, dict[str, str]]:
        """preprocess → predict (or explain) → postprocess; returns the result and any response
        headers the model set. With batching, a predict request may share one run of the stages with
        other requests (request_batching.py). A V2 request's `timeout` parameter limits it all; one
        that does not fit the inputs of the model's schema (a ModelMesh schema) is refused first."""
        v2 = isinstance(payload, InferRequest)
        if v2 and served.schema is not None and served.schema.inputs:
            check_inputs(served.schema.inputs, payload.inputs, served.model.name)
        seconds = request_timeout(payload) if v2 else None
        if seconds is None:
            return await self._run(served, payload, headers, verb)
        limit = asyncio.timeout(seconds)
        try:
            async with limit:
                return await self._run(served, payload, headers, verb)
        except TimeoutError:
            if not limit.expired():  # the model's own TimeoutError
                raise
            raise RequestTimedOut(
                f"Request timeout expired: model {served.model.name} did not answer within the "
                f"request's timeout of {payload.parameters['timeout']} microseconds"
            ) from None

    async def _run(
        self, served: ServedModel, payload: Any, headers: dict[str, str], verb: str
    ) -> tuple[Any, dict[str, str]]:
        settings = self._batch_settings(served)
        if verb == "predict" and settings is not None:
            return await self._batcher(served, settings).run(payload, headers)
        return await self.run_stages(served, payload, headers, verb)

    def _batch_settings(self, served: ServedModel) -> BatchSettings | None:
        """The server's batcher settings, else the model's own (an MLServer model-settings.json's
        adaptive batching); None once batching has stopped."""
        if self._batching_stopped:
            return None
        if self.batching is not None:
            return self.batching
        own = getattr(served.model, "adaptive_batching", None)
        return own if isinstance(own, BatchSettings) else None

    def stop_batching(self) -> None:
        """From now on predict requests run at once: the batches waiting start, and new requests run
        alone (a server that stops answers what it holds without waiting for company)."""
        self.batching = None
        self._batching_stopped = True
        for _, batcher in self._batchers.values():
            batcher.flush()

    def _batcher(self, served: ServedModel, settings: BatchSettings) -> ModelBatcher:
        name = served.model.name
        found = self._batchers.get(name)
        if found is None or found[0] is not served:
            batcher = ModelBatcher(
                served.model,
                lambda payload, headers: self.run_stages(served, payload, headers),
                settings,
            )
            found = self._batchers[name] = (served, batcher)
        return found[1]

    async def run_stages(
        self, served: ServedModel, payload: Any, headers: dict[str, str], verb: str = "predict"
    ) -> tuple[Any, dict[str, str]]:
        """One run of the stages, each timed (and, with tracing on, each a span)."""
        stages = served.stages
        stage_seconds = metrics.for_model(served.model.name).stage_seconds
        response_headers: dict[str, str] = {}
        traced = tracing.traced()
        for stage_name in ("preprocess", verb, "postprocess"):
            stage = stages[stage_name]
            if stage.skip:
                continue
            started = time.perf_counter()
            span = (
                tracing.start_span(stage_name, attributes={"modelplane.model": served.model.name})
                if traced
                else None
            )
            try:
                if span is None:  # not traced here
                    payload = await stage(payload, headers, response_headers)
                else:
                    with span.shared():  # the model's code sees the stage's span, its spans are children
                        payload = await stage(payload, headers, response_headers)
            finally:  # a stage that fails is timed too, as in KServe
                # (TF Serving's classify and regress count as predict: KServe has no stage of theirs.)
                timed_as = stage_name if stage_name in stage_seconds else "predict"
                stage_seconds[timed_as].observe(time.perf_counter() - started)
        return payload, response_headers

    def server_metadata(self) -> dict:
        return {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}

    def model_metadata(self, name: str) -> dict:
        """A model's V2 metadata, under the name it answers as (a repository load's `model_id`, where
        one was given), its inputs and outputs those of the schema it was loaded with, if any."""
        served = self.repository.get(name)
        model, schema = served.model, served.schema or ModelSchema()
        version = getattr(model, "version", None)
        return {
            "name": model.name,
            "versions": [version] if version else [],
            "platform": getattr(model, "platform", ""),
            "inputs": model.get_input_types() if schema.inputs is None else schema.inputs,
            "outputs": model.get_output_types() if schema.outputs is None else schema.outputs,
        }

    def request_metrics(self, name: str) -> metrics.ModelMetrics:
        """The metrics a request for `name` counts in: its model's, or for a name the server does not
        hold, those of the unnamed model (a label per name a client makes up would grow without bound)."""
        return metrics.for_model(name if name in self.repository else "")

    def grpc_call(self, name: str) -> GrpcCallMetrics:
        """Counts the gRPC call it wraps (`with`) in `name`'s request metrics, with its code and time."""
        return GrpcCallMetrics(self.request_metrics(name))

    def resolve(self, name: str, version: str | None = None) -> ServedModel:
        """The ready model for a request; a version, if given, must be the model's own."""
        served = self.repository.get_ready(name)
        if version is not None:
            check_version(served, name, version)
        return served

    def repository_index(self, ready_only: bool = False) -> list[dict]:
        """The models of the repository as Triton's index lists them; with `ready_only`, the ready ones."""
        index = []
        for name, served in self.repository.items():
            entry = {"name": name, "state": "READY" if served.model.ready else "UNAVAILABLE"}
            version = getattr(served.model, "version", None)
            if version:
                entry["version"] = version
            if served.load_error:
                entry["reason"] = served.load_error
            index.append(entry)
        # As Triton lists them: an unloaded model is still in the repository, and a load brings it back.
        index += [
            {"name": name, "state": "UNAVAILABLE", "reason": "unloaded"}
            for name in self.repository.unloaded()
        ]
        # A model in the repository folder never loaded has no state yet, nor a reason.
        index += [{"name": name, "state": ""} for name in self.repository.never_loaded()]
        if ready_only:
            index = [entry for entry in index if entry["state"] == "READY"]
        return index


def check_version(served: ServedModel, name: str, version: str) -> None:
    own = getattr(served.model, "version", None)
    if not _same_version(version, own or ""):
        available = f"version {own}" if own else "no versions"
        raise ModelNotFound(name, f"Model {name} has no version {version} (it serves {available}).")


def _same_version(asked: str, own: str) -> bool:
    """Numbered versions are compared as numbers, as TF Serving and Triton read them (`/versions/02` is
    version 2); others as they are written."""
    if asked == own:
        return True
    numbered = all(text.isascii() and text.isdigit() for text in (asked, own))
    return numbered and int(asked) == int(own)


class GrpcCallMetrics:
    """A gRPC call's count and time in its model's request metrics: OK, the code of the ModelplaneError
    it raised, else INTERNAL. (A class rather than a generator: it wraps every call.)"""

    __slots__ = ("_metrics", "_started")

    def __init__(self, model_metrics: metrics.ModelMetrics) -> None:
        self._metrics = model_metrics
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, kind: type | None, error: BaseException | None, traceback: Any) -> None:
        if error is None:
            code = grpc.StatusCode.OK
        else:
            code = error.grpc_code if isinstance(error, ModelplaneError) else grpc.StatusCode.INTERNAL
        self._metrics.observe_request("grpc", code.value[0], time.perf_counter() - self._started)
