"""Delivering payload events (`PayloadDelivery`) to a real CloudEvents receiver that is slow: a batch's
answers may take longer in all than the send timeout, as long as they keep coming."""

from __future__ import annotations

import asyncio
import base64
import collections
import ssl
import time

from modelplane.telemetry.payload_delivery import DeliverySettings, PayloadDelivery, SinkStats
from modelplane.telemetry.payload_events import PayloadLogSpec, PayloadRecord
from tests.local.certificates import write_certificates
from tests.telemetry.cloudevents_receiver import CloudEventsReceiver

SETTINGS = DeliverySettings(send_timeout=0.5, backoff_initial=0.05, backoff_max=0.2)


def record(spec: PayloadLogSpec, event_id: str) -> PayloadRecord:
    return PayloadRecord(spec, True, event_id, time.time_ns(), "application/json", b'{"instances":[[1]]}', {})


def deliver(
    receiver: CloudEventsReceiver, ids: list[str], within: float = 30.0, url: str | None = None
) -> SinkStats:
    """Submits an event of each id (before the writers run: they find them all queued), and waits until
    each was delivered or dropped; the sink's counters."""
    spec = PayloadLogSpec(url or receiver.url, "request", "iris", "default", "predictor")

    async def run() -> SinkStats:
        delivery = PayloadDelivery(SETTINGS)
        delivery.start()
        for event_id in ids:
            delivery.submit(record(spec, event_id))
        (stats,) = delivery.stats()
        deadline = time.monotonic() + within
        while stats.sent + sum(stats.dropped.values()) < len(ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await delivery.stop()
        return stats

    return asyncio.run(run())


def test_a_slow_receiver_that_keeps_answering_gets_each_event_once():
    receiver = CloudEventsReceiver(delay=0.05).start()  # 40 events take it 2 s, four send timeouts
    ids = [f"slow-{index}" for index in range(40)]
    try:
        stats = deliver(receiver, ids)
    finally:
        receiver.stop()
    assert (stats.sent, stats.retries, stats.dropped) == (40, 0, {})
    assert sorted(event.get_id() for event in receiver.events) == sorted(ids)


def test_the_answers_that_came_before_a_receiver_stalled_count_and_only_the_rest_go_again():
    stalled = []

    def delay(event_id: str) -> float:  # the sixth event, the first time: longer than the send timeout
        if event_id == "event-5" and not stalled:
            stalled.append(event_id)
            return 1.5
        return 0.0

    receiver = CloudEventsReceiver(delay=delay).start()
    ids = [f"event-{index}" for index in range(20)]
    try:
        stats = deliver(receiver, ids)
    finally:
        receiver.stop()
    assert (stats.sent, stats.retries, stats.dropped) == (20, 15, {})
    copies = collections.Counter(event.get_id() for event in receiver.events)
    assert set(copies) == set(ids)
    # The stalled event was taken, but its answer came too late: it was sent again, as the docs warn.
    assert {event_id for event_id, count in copies.items() if count > 1} <= {"event-5"}


def test_credentials_in_the_url_are_sent_as_basic_authorization():
    receiver = CloudEventsReceiver().start()
    try:
        url = receiver.url.replace("http://", "http://logs:p%40ss@")
        stats = deliver(receiver, ["with-credentials"], url=url)
    finally:
        receiver.stop()
    assert stats.sent == 1
    (headers,) = receiver.raw_headers
    assert headers["authorization"] == "Basic " + base64.b64encode(b"logs:p@ss").decode()
    assert headers["host"] == f"127.0.0.1:{receiver.port}"


def test_an_https_receiver_signed_by_a_private_ca_is_trusted_through_ssl_cert_file(tmp_path, monkeypatch):
    ca, certificate, key = write_certificates(tmp_path)
    receiver = CloudEventsReceiver().start()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    receiver.serve_tls(context)
    url = receiver.url.replace("http://", "https://")
    try:
        untrusted = deliver(receiver, ["untrusted"], url=url)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        trusted = deliver(receiver, ["trusted"], url=url)
    finally:
        receiver.stop()
    assert (untrusted.sent, untrusted.dropped) == (0, {"undeliverable": 1})
    assert trusted.sent == 1
    assert [event.get_id() for event in receiver.events] == ["trusted"]
