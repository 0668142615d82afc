"""Sending spans over OTLP/HTTP (`span_export`) to a real receiver: what is queued goes every schedule
delay, wherever the spans ended."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from modelplane.telemetry.span_export import OtlpHttpExport
from modelplane.telemetry.spans import INTERNAL, Span
from tests.telemetry.otlp_receiver import OtlpReceiver

SCOPE = ("modelplane", "")


@pytest.fixture(scope="module")
def receiver():
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def export_to(receiver: OtlpReceiver, schedule_delay_ms: int) -> OtlpHttpExport:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": str(schedule_delay_ms),
    }
    return OtlpHttpExport(environ, {"service.name": "exporter"}, SCOPE)


def end_span(export: OtlpHttpExport, trace_id: bytes, name: str) -> None:
    Span(export.finish, name, INTERNAL, trace_id, b"", False, "", None).end()


async def arrived(receiver: OtlpReceiver, trace_id: bytes, names: set[str], within: float) -> set[str]:
    """The names of the trace's spans the receiver has once it has `names`, or once `within` seconds
    passed; the loop keeps running (idle) meanwhile."""
    deadline = time.monotonic() + within
    while True:
        found = {span.name for span in receiver.trace(trace_id.hex())}
        if names <= found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


def test_spans_ended_on_another_threads_own_loop_go_within_the_schedule_delay(receiver):
    """As an explainer's queries to its predictor (`predict_blocking`): a worker thread runs each on a
    loop of its own, which runs only while a query does. Their spans, and those the server's loop ends
    after them, go within the schedule delay, with nothing else happening meanwhile."""
    trace_id = random.randbytes(16)

    def query_on_its_own_loop(export: OtlpHttpExport) -> None:
        async def query() -> None:
            end_span(export, trace_id, "query")

        asyncio.new_event_loop().run_until_complete(query())  # then kept, idle, as the thread's is

    async def serve() -> tuple[set[str], set[str]]:
        export = export_to(receiver, 100)  # as tracing.configure, on the server's loop
        try:
            await asyncio.to_thread(query_on_its_own_loop, export)
            first = await arrived(receiver, trace_id, {"query"}, 2.0)
            end_span(export, trace_id, "after")
            return first, await arrived(receiver, trace_id, {"query", "after"}, 2.0)
        finally:
            await asyncio.to_thread(export.shutdown)

    assert asyncio.run(serve()) == ({"query"}, {"query", "after"})


def test_made_before_its_loop_runs_it_sends_on_the_loop_spans_end_on(receiver):
    """As the gateway's worker configures tracing before its loop runs: that loop, once a span ends on
    it, sends them, those of a plain worker thread too."""
    export = export_to(receiver, 100)
    trace_id = random.randbytes(16)

    async def serve() -> set[str]:
        end_span(export, trace_id, "request")
        await asyncio.to_thread(end_span, export, trace_id, "on a worker thread")
        return await arrived(receiver, trace_id, {"request", "on a worker thread"}, 2.0)

    try:
        assert asyncio.run(serve()) == {"request", "on a worker thread"}
    finally:
        export.shutdown()
