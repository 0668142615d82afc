"""The `Model` users subclass: load, then preprocess → predict → postprocess (or explain).

Each stage may be a plain method or a coroutine. A plain method runs on a worker thread, so a slow
model never stalls the event loop that serves other requests; a coroutine runs on the loop.
Stages a model does not override are skipped, so a model that only writes `predict` pays nothing
for the others.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from modelplane.protocol.errors import NotImplementedByModel
from modelplane.server.v1_paths import EXAMPLE_VERBS

STAGES = ("preprocess", "predict", "postprocess", "explain")
DEFAULT_PREDICTOR_TIMEOUT_SECONDS = 600  # KServe's


class Model:
    """A model served under `name`. Override `load` and `predict`; the rest is optional.

    On V1 requests the payload is the decoded JSON body (a dict); on V2 requests (REST or gRPC)
    it is an `InferRequest`. `predict` may return an `InferResponse`, a dict, or an array/list,
    which the server wraps as the protocol requires.
    """

    # The V2 request parameters the model reads. None (a model of your own): every parameter is handed
    # to it and it decides. A set (the built-in runtimes): the answer names the request's other
    # parameters, and every parameter of its tensors, as ignored (modelplane/protocol/v2_parameters.py).
    reads_parameters: frozenset[str] | None = None
    # The parameters of its input tensors a built-in runtime reads (the others are named as ignored).
    reads_input_parameters: frozenset[str] = frozenset()
    # TF Serving's verbs that read tf.Example inputs (`classify`, `regress`) the model serves, each with
    # a method of that name. A transformer passes the others on to its predictor, as it does predict;
    # any other model answers `/v1/models/{name}:classify` 501.
    example_verbs: frozenset[str] = frozenset()
    # Whether a V2 request's requested outputs pick the outputs of its answer. False: the model answers
    # the same outputs whatever is asked, and all of them are sent (MLServer's lightgbm runtime).
    answers_requested_outputs = True
    # Whether `predict` reads a V1 request's `instances` as one array (`v1_instances`): a large body's
    # instances of numbers then arrive as a numpy array, read without a Python object per number
    # (protocol/lean_json.py). False (a model of your own): they are lists, as KServe gives them.
    reads_v1_instances_as_array = False

    def __init__(self, name: str, return_response_headers: bool = False):
        # A stage that takes `response_headers` sets them whatever `return_response_headers` says; as in
        # KServe, it has a transformer's default `predict` pass the predictor's headers back.
        self.name = name
        self.return_response_headers = return_response_headers
        self.ready = False
        # Set by the server for transformers: where the predictor listens and how to speak to it.
        self.predictor_host: str | None = None
        self.predictor_protocol: str = "v1"
        self.explainer_host: str | None = None
        # How long a call to the predictor or explainer may take (KServe's
        # --predictor_request_timeout_seconds).
        self.predictor_request_timeout_seconds: float = DEFAULT_PREDICTOR_TIMEOUT_SECONDS
        # How many more times a call is made whose predictor or explainer takes no connection (KServe's
        # --predictor_request_retries; over gRPC, a call answered UNAVAILABLE).
        self.predictor_request_retries: int = 0
        # Whether the model is ready only when its predictor holds it ready too (KServe's
        # --enable_predictor_health_check).
        self.predictor_health_check: bool = False

    @property
    def protocol(self) -> str:
        """The predictor's protocol, by the name KServe's transformer samples set it (`self.protocol`)."""
        return self.predictor_protocol

    @protocol.setter
    def protocol(self, value: str) -> None:
        self.predictor_protocol = value

    def load(self) -> bool:
        """Load the model's artefacts. Set and return `self.ready`."""
        self.ready = True
        return self.ready

    def start(self) -> None:
        """Called once the model is loaded and ready, when the server starts (as KServe calls it)."""

    async def healthy(self) -> bool:
        return self.ready

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return payload

    def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict | None = None
    ) -> Any:
        if self.predictor_host:
            from modelplane.server.predictor_client import forward_predict

            return forward_predict(self, payload, headers, response_headers)
        raise NotImplementedByModel(f"Model {self.name} does not implement predict")

    def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any:
        return result

    def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if self.explainer_host:
            from modelplane.server.predictor_client import forward_explain

            return forward_explain(self, payload, headers)
        raise NotImplementedByModel(f"Model {self.name} has no explainer")

    def get_input_types(self) -> list[dict]:
        """Input tensor metadata for V2 model metadata: `[{name, datatype, shape}]`."""
        return []

    def get_output_types(self) -> list[dict]:
        return []

    def v1_status(self) -> dict:
        """Fields a ready model adds to its V1 status (`GET /v1/models/{name}`), beside KServe's `name`
        and `ready`: TF Serving's `model_version_status` for tensorflow, say."""
        return {}

    def v1_metadata(self) -> dict | None:
        """The answer to `GET /v1/models/{name}/metadata` (TF Serving's, for tensorflow); None where the
        model has none, and the route is not found."""
        return None

    def classification_labels(self, output: str) -> Sequence[str] | None:
        """The labels of the classes of an output, by index, for V2's classification parameter
        ("value:index:label"); None, or an empty label, for "value:index" alone."""
        return None

    def stop(self) -> None:
        """Release what `load` acquired; called on unload and at shutdown."""


Stage = Callable[..., Any]


class StageRunner:
    """Calls one stage of a model the right way: awaited, on a thread, or skipped."""

    __slots__ = ("name", "call", "skip", "takes_response_headers")

    def __init__(self, model: Model, stage: str, method: Stage | None = None):
        method = method or getattr(model, stage)
        default = getattr(Model, stage, None)  # TF Serving's example verbs have none
        self.name = stage
        function = getattr(method, "__func__", method)
        # A transformer's default predict forwards over the network: keep it on the loop.
        self.skip = stage in ("preprocess", "postprocess") and function is default
        self.takes_response_headers = "response_headers" in _parameters(method)
        if inspect.iscoroutinefunction(method) or (stage in ("predict", "explain") and function is default):
            self.call = method
        else:
            self.call = _on_thread(method)

    async def __call__(self, payload: Any, headers: dict, response_headers: dict) -> Any:
        try:
            if self.takes_response_headers:
                result = self.call(payload, headers, response_headers=response_headers)
            else:
                result = self.call(payload, headers)
            if inspect.isawaitable(result):
                result = await result
        except NotImplementedError as exc:  # KServe answers a model's NotImplementedError 501
            raise NotImplementedByModel(str(exc) or f"{self.name} is not implemented") from None
        return result


def stage_runners(model: Model) -> dict[str, StageRunner]:
    """A runner for each stage, and for each of TF Serving's example verbs the model serves: its own, or
    a transformer's, passed on to its predictor."""
    runners = {stage: StageRunner(model, stage) for stage in (*STAGES, *sorted(model.example_verbs))}
    if model.predictor_host:
        for verb in EXAMPLE_VERBS:
            if verb not in runners:
                runners[verb] = StageRunner(model, verb, _passed_on(model, verb))
    return runners


def _passed_on(model: Model, verb: str) -> Stage:
    async def pass_on(
        payload: Any, headers: dict[str, str] | None = None, response_headers: dict | None = None
    ):
        from modelplane.server.predictor_client import forward_example_verb

        return await forward_example_verb(model, verb, payload, headers, response_headers)

    return pass_on


def _on_thread(method: Stage) -> Stage:
    @functools.wraps(method)
    async def run(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        # In the caller's context, so that the current span (tracing) is the thread's too.
        context = contextvars.copy_context()
        return await loop.run_in_executor(None, functools.partial(context.run, method, *args, **kwargs))

    return run


def _parameters(method: Stage) -> set[str]:
    try:
        return set(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return set()
