"""Runs an InferenceGraph for one request: the four node types, exactly as KServe's router does.

Every node returns a `Result` (the body and status that answer it) or raises `RoutingError` (the router
answers `{"error": "Failed to process request", "cause": ...}`). A downstream non-2xx is a result, not an
error. An error inside a child node reaches its parent as a 500, as in KServe; a step that timed out stays
a 504 all the way up, and its cause names the step.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from modelplane.graph import redirects
from modelplane.graph.gjson import CompiledPath, compile_path
from modelplane.graph.metrics import CANCELLED, Observer, RouterMetrics
from modelplane.graph.payload import INVALID_JSON, Payload, map_predictions_to_instances
from modelplane.graph.spec import ROOT_NODE, GraphSpec, NodeSpec, StepSpec
from modelplane.protocol.http_client import HttpClient, Target, TransportError, parse_target, without_password
from modelplane.telemetry import tracing

SWITCH_NO_MATCH = "None of the routes matched with the switch condition"


class RoutingError(Exception):
    """The graph cannot answer this request; `status` is what the client gets."""

    def __init__(self, cause: str, status: int = 500, *, timed_out: bool = False) -> None:
        super().__init__(cause)
        self.cause = cause
        self.status = status
        self.timed_out = timed_out

    def seen_by_parent(self) -> RoutingError:
        """KServe turns any error of a child node into a 500; a timeout stays a 504 here."""
        if self.timed_out or self.status == 500:
            return self
        return RoutingError(self.cause)


@dataclass(frozen=True)
class Result:
    payload: Payload
    status: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299


@dataclass
class RequestContext:
    """What every step of one request shares: the header block to send, and which steps are running."""

    headers: bytes
    deadline: asyncio.Timeout | None = None  # the request's serverWrite deadline
    running: dict[object, str] = field(default_factory=dict)

    def cancelled_status(self) -> int | str:
        """What a node or step stopped by cancellation answered: 504 if the deadline passed."""
        if self.deadline is not None and self.deadline.expired():
            return 504
        return CANCELLED


@dataclass(frozen=True)
class _Step:
    spec: StepSpec
    label: str  # how errors name the step
    condition: CompiledPath | None
    target: Target | None
    target_error: str | None
    observer: Observer
    url: str = ""  # the target's, as messages and spans show it: without its password


@dataclass(frozen=True)
class _Node:
    spec: NodeSpec
    steps: tuple[_Step, ...]
    observer: Observer
    run: Callable[[_Node, Payload, RequestContext], Awaitable[Result]]


class GraphRouter:
    """Compiles a graph once (conditions, targets, metrics) and runs it per request."""

    def __init__(
        self,
        graph: GraphSpec,
        client: HttpClient,
        metrics: RouterMetrics,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._service_timeout = graph.router_timeouts.service_client
        self._rng = rng or random.Random()
        runners = {
            "Sequence": self._run_sequence,
            "Switch": self._run_switch,
            "Splitter": self._run_splitter,
            "Ensemble": self._run_ensemble,
        }
        self._nodes = {
            name: _Node(
                spec=node,
                steps=tuple(_compile_step(node, step, metrics) for step in node.steps),
                observer=metrics.node(name),
                run=runners.get(node.router_type, self._run_unknown),
            )
            for name, node in graph.nodes.items()
        }

    async def route(self, body: bytes, context: RequestContext) -> Result:
        """Run the graph from its root node."""
        return await self._run_node(ROOT_NODE, Payload(body), context)

    async def _run_node(self, name: str, payload: Payload, context: RequestContext) -> Result:
        node = self._nodes.get(name)
        if node is None:  # validation rejects such graphs; this is KServe's answer to one
            raise RoutingError("invalid route type: ")
        span = (
            tracing.start_span(f"node {name}", attributes={"modelplane.node.type": node.spec.router_type})
            if tracing.enabled()
            else None
        )
        if span is None:
            return await self._run_node_measured(node, payload, context)
        with span:
            return await self._run_node_measured(node, payload, context)

    async def _run_node_measured(self, node: _Node, payload: Payload, context: RequestContext) -> Result:
        started = time.perf_counter()
        status: int | str = CANCELLED
        try:
            result = await node.run(node, payload, context)
            status = result.status
            return result
        except RoutingError as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = context.cancelled_status()
            raise
        finally:
            node.observer.observe(status, time.perf_counter() - started)

    async def _run_step(self, node: _Node, step: _Step, payload: Payload, context: RequestContext) -> Result:
        started = time.perf_counter()
        status: int | str = CANCELLED
        stopped_by_deadline = False
        key = object()
        context.running[key] = step.label
        try:
            result = await self._execute(step, payload, context)
            status = result.status
            return result
        except RoutingError as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = context.cancelled_status()
            stopped_by_deadline = status == 504
            raise
        finally:
            if not stopped_by_deadline:  # such a step stays listed, for the 504's cause to name it
                del context.running[key]
            step.observer.observe(status, time.perf_counter() - started)

    async def _execute(self, step: _Step, payload: Payload, context: RequestContext) -> Result:
        if step.spec.node_name:
            try:
                return await self._run_node(step.spec.node_name, payload, context)
            except RoutingError as exc:
                raise exc.seen_by_parent() from None
        if step.target is None:
            raise RoutingError(f"{step.label}: {step.target_error}")
        url = step.url
        span = (
            tracing.start_span(f"POST {url}", tracing.CLIENT, {"url.full": url})
            if tracing.enabled()
            else None
        )
        if span is None:
            return await self._call(step, payload, context.headers)
        with span:
            # The step's request names this span as its parent, in place of the caller's.
            result = await self._call(
                step, payload, tracing.without_trace_lines(context.headers) + span.header_lines()
            )
            span.set_attribute("http.response.status_code", result.status)
            return result

    async def _call(self, step: _Step, payload: Payload, headers: bytes) -> Result:
        target, body = step.target, payload.raw
        try:
            # Redirects are followed within the serviceClient timeout, as Go's Client.Timeout has them.
            if self._service_timeout is None:
                response = await self._client.post(target, body, redirects.with_credentials(target, headers))
                if response.status in redirects.REDIRECTS:
                    response = await redirects.follow(self._client, target, body, headers, response)
            else:
                async with asyncio.timeout(self._service_timeout):
                    response = await self._client.post(
                        target, body, redirects.with_credentials(target, headers)
                    )
                    if response.status in redirects.REDIRECTS:
                        response = await redirects.follow(self._client, target, body, headers, response)
        except TimeoutError:
            raise RoutingError(
                f"{step.label} did not answer within the serviceClient timeout of {self._service_timeout:g}s",
                504,
                timed_out=True,
            ) from None
        except (TransportError, redirects.RedirectError) as exc:
            raise RoutingError(f"{step.label}: {exc}") from None
        return Result(Payload(response.body), response.status)

    # The node types

    async def _run_sequence(self, node: _Node, payload: Payload, context: RequestContext) -> Result:
        response: Result | None = None
        for step in node.steps:
            request = payload
            if step.spec.data == "$response" and response is not None:
                request = response.payload
            if step.spec.map_predictions_to_instances:
                request = map_predictions_to_instances(request)
            if step.condition is not None:
                previous = response.payload.condition_doc if response is not None else INVALID_JSON
                if previous is INVALID_JSON:
                    raise RoutingError("invalid response")
                if not step.condition.get(previous).exists:
                    # KServe stops here and answers the previous response with 200, whatever its status.
                    return Result(response.payload, 200)
            response = await self._run_step(node, step, request, context)
            if step.spec.hard and not response.ok:
                return response
        if response is None:  # validation rejects an empty Sequence
            raise RoutingError(f'node "{node.spec.name}" has no steps')
        return response

    async def _run_switch(self, node: _Node, payload: Payload, context: RequestContext) -> Result:
        document = payload.condition_doc
        if document is not INVALID_JSON:
            for step in node.steps:
                if step.condition is not None and step.condition.get(document).exists:
                    return await self._run_step(node, step, payload, context)
        raise RoutingError(SWITCH_NO_MATCH, 404)

    async def _run_splitter(self, node: _Node, payload: Payload, context: RequestContext) -> Result:
        point = self._rng.randrange(100)
        end = 0
        for step in node.steps:
            end += step.spec.weight or 0
            if point < end:
                return await self._run_step(node, step, payload, context)
        raise RoutingError("no route was selected by the splitter")

    async def _run_ensemble(self, node: _Node, payload: Payload, context: RequestContext) -> Result:
        """All steps at once; results are read in step order, as KServe does.

        The first step in step order that fails decides the answer (a Hard step's non-2xx, or an error);
        as soon as one is known to fail, the steps after it are cancelled, since they can no longer
        change the answer.
        """
        tasks = [
            asyncio.ensure_future(self._ensemble_member(node, step, payload, context)) for step in node.steps
        ]
        for index, task in enumerate(tasks):
            task.add_done_callback(functools.partial(_cancel_later_on_failure, tasks, node.steps, index))
        try:
            merged: dict[str, Any] = {}
            for step, task in zip(node.steps, tasks, strict=True):
                document, status = await task
                if step.spec.hard and not 200 <= status <= 299:
                    return Result(Payload.from_doc(document, sort_keys=True), status)
                merged[step.spec.key] = document
            return Result(Payload.from_doc(merged, sort_keys=True), 200)
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # an outcome nobody reads: mark it seen, or asyncio logs it

    async def _ensemble_member(
        self, node: _Node, step: _Step, payload: Payload, context: RequestContext
    ) -> tuple[Any, int]:
        result = await self._run_step(node, step, payload, context)
        document = result.payload.doc
        if document is not None and not isinstance(document, dict):
            if document is not INVALID_JSON:
                kind = f"a JSON {_json_kind(document)}"
            elif result.payload.condition_doc is not INVALID_JSON:
                kind = "JSON that Go's encoding/json refuses (a number beyond float64)"
            else:
                kind = "a body that is not JSON"
            raise RoutingError(f"{step.label} answered {kind}; an Ensemble step must answer a JSON object")
        return document, result.status

    async def _run_unknown(self, node: _Node, payload: Payload, context: RequestContext) -> Result:
        raise RoutingError(f"invalid route type: {node.spec.router_type}")


def _cancel_later_on_failure(
    tasks: list[asyncio.Future], steps: tuple[_Step, ...], index: int, task: asyncio.Future
) -> None:
    if task.cancelled():
        return
    error = task.exception()
    failed = error is not None or (steps[index].spec.hard and not 200 <= task.result()[1] <= 299)
    if failed:
        for later in tasks[index + 1 :]:
            later.cancel()


def _compile_step(node: NodeSpec, step: StepSpec, metrics: RouterMetrics) -> _Step:
    condition = None
    if step.condition and node.router_type in ("Sequence", "Switch"):
        condition = compile_path(step.condition)
    target, target_error = None, None
    if not step.node_name:
        target, target_error = _resolve_target(step)
    label = step.describe(node.name)
    url = ""
    if target is not None:
        url = without_password(target.url)
        label += f" ({url})"
    return _Step(
        spec=step,
        label=label,
        condition=condition,
        target=target,
        target_error=target_error,
        observer=metrics.step(node.name, step.key),
        url=url,
    )


def _resolve_target(step: StepSpec) -> tuple[Target | None, str | None]:
    """A serviceUrl is called as given. A serviceName alone has no URL in the router (KServe posts to "")."""
    if not step.service_url:
        if step.service_name:
            return None, f'InferenceService "{step.service_name}" has no URL yet (serviceUrl is empty)'
        return None, "the step has no serviceUrl to call"
    try:
        return parse_target(step.service_url), None
    except ValueError as exc:
        return None, str(exc)


def _json_kind(document: Any) -> str:
    if isinstance(document, list):
        return "array"
    if isinstance(document, str):
        return "string"
    if isinstance(document, bool):
        return "boolean"
    return "number"
