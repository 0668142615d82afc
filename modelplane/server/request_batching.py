"""The server's batcher (KServe's `batcher`): a model's predict requests, V1, V2 and gRPC alike, wait up
to `max_latency` for others they can share a model call with (see batch_payloads.py), and the stacked
request goes through the model's stages once.

The model sees one request: the stacked payload, with the headers every request of the batch has in
common. Each request gets its own part of the answer, with the response headers the model set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from modelplane.protocol.errors import InferenceError, ModelplaneError
from modelplane.server import metrics
from modelplane.server.batch_payloads import batch_key, split, stack
from modelplane.server.batching import Batcher, BatchTimeout, WholeBatchError

# KServe's defaults (its `inferenceservice-config` batcher entry).
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_LATENCY_MS = 5000
# Batchers of request kinds that no longer have anything waiting are dropped past this many.
KEPT_BATCHERS = 64

Outcome = tuple[Any, dict[str, str]]  # what a model's stages give: the answer and the response headers
RunStages = Callable[[Any, dict[str, str]], Awaitable[Outcome]]


class BatchMetrics(Protocol):
    def observe_batch(self, rows: int) -> None: ...

    def observe_wait(self, seconds: float) -> None:
        """How long a request waited for its batch to start (once, however often the batch is run)."""


@dataclass(frozen=True)
class BatchSettings:
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_latency: float = DEFAULT_MAX_LATENCY_MS / 1000  # seconds
    timeout: float | None = None  # seconds a model call under the batcher may take; None: no limit
    # What max_batch_size counts: rows (V1 instances, V2 rows), as KServe's batcher does, or requests,
    # as MLServer's adaptive batching does (a model-settings.json's max_batch_size).
    counts_requests: bool = False


class BatchTimedOut(ModelplaneError):
    """A model call under the batcher ran past its timeout."""

    status_code = 504
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class _Request:
    """One request in a batch: one of the batcher's items, or one for each of its rows."""

    __slots__ = ("payload", "headers", "rows", "arrived")

    def __init__(self, payload: Any, headers: dict[str, str], rows: int):
        self.payload = payload
        self.headers = headers
        self.rows = rows
        self.arrived: float | None = time.monotonic()  # None once its wait is counted


class ModelBatcher:
    """Batches the predict requests of one model: one `Batcher` per kind of request that can share a call."""

    def __init__(
        self,
        model: Any,
        run_stages: RunStages,
        settings: BatchSettings,
        model_metrics: BatchMetrics | None = None,
    ):
        """`model_metrics`: where the batch sizes are counted (the model's, by default)."""
        self._model = model
        self._run_stages = run_stages
        self._settings = settings
        self._batchers: dict[Hashable, Batcher[_Request, Outcome]] = {}
        self._metrics = model_metrics or metrics.for_model(model.name)

    async def run(self, payload: Any, headers: dict[str, str]) -> Outcome:
        """One predict request's answer and response headers, from a model call it may share."""
        planned = batch_key(payload)
        if planned is None:
            return await self._alone(payload, headers)
        key, rows = planned
        batcher = self._batchers.get(key) or self._new_batcher(key)
        request = _Request(payload, headers, rows)
        try:
            outcomes = await batcher.submit([request] if self._settings.counts_requests else [request] * rows)
        except BatchTimeout as exc:
            raise BatchTimedOut(str(exc)) from None
        except WholeBatchError as exc:
            raise InferenceError(str(exc)) from None
        return outcomes[0]

    @property
    def waiting_items(self) -> int:
        """How many rows (or requests, where max_batch_size counts them) wait for their batch to start."""
        return sum(batcher.waiting_items for batcher in self._batchers.values())

    @property
    def waiting_requests(self) -> int:
        """How many requests wait for their batch to start."""
        return sum(batcher.waiting_requests for batcher in self._batchers.values())

    def flush(self) -> None:
        """Start every waiting batch now, however small."""
        for batcher in self._batchers.values():
            batcher.flush()

    def _new_batcher(self, key: Hashable) -> Batcher[_Request, Outcome]:
        if len(self._batchers) >= KEPT_BATCHERS:
            self._batchers = {k: b for k, b in self._batchers.items() if b.waiting_items}
        settings = self._settings
        batcher = Batcher(
            self._run_batch, settings.max_batch_size, settings.max_latency, timeout=settings.timeout
        )
        self._batchers[key] = batcher
        return batcher

    async def _alone(self, payload: Any, headers: dict[str, str]) -> Outcome:
        """A request no other can share a call with: at once, within the same timeout as batches."""
        timeout = self._settings.timeout
        if timeout is None:
            return await self._run_stages(payload, headers)
        limit = asyncio.timeout(timeout)
        try:
            async with limit:
                return await self._run_stages(payload, headers)
        except TimeoutError:
            if not limit.expired():
                raise
            raise BatchTimedOut(
                f"the model call did not finish within the timeout of {timeout:g} s"
            ) from None

    async def _run_batch(self, items: list[_Request]) -> list[Outcome]:
        requests, counts = _requests_of(items)
        rows = [request.rows for request in requests]
        self._metrics.observe_batch(sum(rows))
        now = time.monotonic()
        for request in requests:
            if request.arrived is not None:
                self._metrics.observe_wait(now - request.arrived)
                request.arrived = None
        if len(requests) == 1:
            request = requests[0]
            return [await self._run_stages(request.payload, request.headers)] * len(items)
        payloads = [request.payload for request in requests]
        stacked = stack(payloads)
        result, response_headers = await self._run_stages(
            stacked, _common_headers([request.headers for request in requests])
        )
        outcomes: list[Outcome] = []
        for answer, count in zip(split(result, stacked, payloads, rows, self._model), counts, strict=True):
            outcomes += [(answer, dict(response_headers))] * count
        return outcomes


def _requests_of(items: list[_Request]) -> tuple[list[_Request], list[int]]:
    """The requests of a batch in order, and the items of each (a request's items are contiguous)."""
    requests: list[_Request] = []
    counts: list[int] = []
    for item in items:
        if requests and requests[-1] is item:
            counts[-1] += 1
        else:
            requests.append(item)
            counts.append(1)
    return requests, counts


def _common_headers(all_headers: list[dict[str, str]]) -> dict[str, str]:
    """The headers, with their values, that every request of a batch has."""
    first, others = all_headers[0], all_headers[1:]
    return {name: value for name, value in first.items() if all(h.get(name) == value for h in others)}
