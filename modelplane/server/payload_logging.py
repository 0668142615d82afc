"""Payload logging in `modelplane serve` itself, for a replica that no gateway fronts: a Kubernetes pod,
where KServe would put its agent sidecar in front of the model server.

`--payload-log-url` (with `--payload-log-mode`, the names its events carry, the headers and annotations
they copy, and a bucket's path, format, marshaller and batches) makes the REST server hand each POST
(the inference, explain and OpenAI requests: not the probes, metadata or metrics, which kubelet and
Prometheus ask for all the time), and the gRPC server each call of the same kinds (`ModelInfer` and the
repository's), and each answer to the same payload logger the gateway uses (`modelplane.telemetry`): CloudEvents to an
HTTP receiver, lines in a file, or objects in a bucket, sent from the server's event loop, never holding
up a request. The bucket's credentials are `STORAGE_CONFIG`'s, as the storage initializer's are.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Callable

from modelplane.protocol.grpc.wire import response_status
from modelplane.protocol.http2.hpack import Headers
from modelplane.protocol.http2.server import H2Request, H2Response, Handler
from modelplane.protocol.http_server import HttpRequest, HttpResponse
from modelplane.protocol.random_ids import random_uuid
from modelplane.telemetry.payload_capture import PayloadCapture, SubmitRecord
from modelplane.telemetry.payload_events import MODES, PayloadLogSpec, header_text

# What Knative names the revision a pod serves; the answers' events carry it.
REVISION_VARIABLE = "K_REVISION"
INTERNAL = 13  # the gRPC status of a call whose handler failed
GRPC_CONTENT = [(b"content-type", b"application/grpc")]


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "payload logging (a component's `logger`, which the operator turns into these)"
    )
    group.add_argument(
        "--payload-log-url", help="log each request and answer: http(s)://, file://, s3://, gs:// or abfs://"
    )
    group.add_argument(
        "--payload-log-mode", choices=MODES, default="all", help="which payloads (default all)"
    )
    group.add_argument("--payload-log-inference-service", default="", help="the service the events name")
    group.add_argument("--payload-log-namespace", default="default", help="the namespace the events name")
    group.add_argument("--payload-log-component", default="predictor", help="the component the events name")
    group.add_argument(
        "--payload-log-endpoint", default="", help="the endpoint the events name (default or canary)"
    )
    group.add_argument(
        "--payload-log-metadata-headers",
        default="",
        help="request headers copied into the events (comma-separated)",
    )
    group.add_argument(
        "--payload-log-metadata-annotations",
        default="",
        help="annotations copied into the events, as name=value (comma-separated)",
    )
    group.add_argument(
        "--payload-log-store-path", default="", help="a bucket: the folder under the component's"
    )
    group.add_argument("--payload-log-store-format", default="json", help="a bucket: json, csv or parquet")
    group.add_argument("--payload-log-marshaller-url", help="a bucket: the marshaller that writes each batch")
    group.add_argument("--payload-log-batch-size", type=int, default=1, help="a bucket: records an object")
    group.add_argument(
        "--payload-log-batch-interval", default="0", help="a bucket: longest wait for a batch to fill"
    )


def spec_from(args: argparse.Namespace) -> PayloadLogSpec | None:
    """The payload logging the flags ask for; None without `--payload-log-url`. Raises ValueError."""
    url = args.payload_log_url
    if not url:
        return None
    from modelplane.control.autoscaling_settings import parse_duration
    from modelplane.telemetry.payload_blob import FORMATS, BlobLogTarget, format_unavailable, is_blob_url
    from modelplane.telemetry.payload_sinks import sink_problem

    problem = sink_problem(url)
    if problem is not None:
        raise ValueError(f"--payload-log-url: {problem}")
    annotations = []
    for item in filter(None, args.payload_log_metadata_annotations.split(",")):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--payload-log-metadata-annotations: {item!r} is not name=value")
        annotations.append((name.strip(), value))
    blob = None
    if is_blob_url(url):
        format = args.payload_log_store_format
        if format not in FORMATS:
            raise ValueError(f"--payload-log-store-format: {format!r} is not one of {', '.join(FORMATS)}")
        if missing := format_unavailable(format, args.payload_log_marshaller_url):
            raise ValueError(f"--payload-log-store-format: {missing}")
        interval = parse_duration(args.payload_log_batch_interval)
        if interval is None:
            raise ValueError(
                f"--payload-log-batch-interval: {args.payload_log_batch_interval!r} is not a duration"
            )
        from modelplane.storage.config import StorageConfig

        blob = BlobLogTarget(
            path=args.payload_log_store_path,
            format=format,
            batch_size=max(1, args.payload_log_batch_size),
            batch_interval=interval,
            marshaller_url=args.payload_log_marshaller_url or None,
            config=tuple(sorted(StorageConfig.from_env().items())),
        )
    return PayloadLogSpec(
        url=url,
        mode=args.payload_log_mode,
        inference_service=args.payload_log_inference_service,
        namespace=args.payload_log_namespace,
        component=args.payload_log_component,
        metadata_headers=tuple(
            filter(None, (name.strip() for name in args.payload_log_metadata_headers.split(",")))
        ),
        annotations=tuple(annotations),
        endpoint=args.payload_log_endpoint,
        blob=blob,
    )


class ServerPayloadLog:
    """Hands each request the REST server answers, and its answer, to the payload logger."""

    def __init__(self, spec: PayloadLogSpec, submit: SubmitRecord) -> None:
        self.spec = spec
        self._submit = submit
        self._revision = os.environ.get(REVISION_VARIABLE, "")

    def request(self, request: HttpRequest, unread_size: int | None = None) -> PayloadCapture:
        """The request's capture, its event handed over; `unread_size`: the size of a body that was not
        read (refused for its size), which the event leaves out."""
        capture = PayloadCapture(self.spec, request.headers, self._request_id(request.headers), self._submit)
        if unread_size is None:
            capture.request_body(request.body)
        else:
            capture.request_left_out(unread_size)
        capture.request_done()
        return capture

    def calls(self, handler: Handler, logged: frozenset[bytes]) -> Handler:
        """The gRPC server's handler, logging the calls to the methods in `logged` (paths)."""

        async def logged_call(request: H2Request) -> H2Response:
            path = request.header(b":path")
            if path not in logged:
                return await handler(request)
            capture = PayloadCapture(
                self.spec, request.headers, self._request_id(request.headers), self._submit, path.decode()
            )
            capture.request_body(request.body)
            capture.request_done()
            try:
                response = await handler(request)
            except Exception as exc:  # the HTTP/2 server logs it and answers INTERNAL, as the event says
                capture.call_answered(INTERNAL, f"{type(exc).__name__} : {exc}", self._revision)
                raise
            if response.trailers is not None:  # not trailers-only: the answer has messages
                capture.response_head(200, GRPC_CONTENT)
                capture.response_body(response.body)
            capture.call_answered(*response_status(response), self._revision)
            return response

        return logged_call

    def too_large_calls(
        self, answer: Callable[[int, Headers], H2Response], logged: frozenset[bytes]
    ) -> Callable[[int, Headers], H2Response]:
        """The gRPC server's answer to a call whose message is over the size limit (refused unread),
        logging the calls to the methods in `logged`: the request's event gives the size, no data."""

        def logged_refusal(body_size: int, headers: Headers) -> H2Response:
            response = answer(body_size, headers)
            path = next((value for name, value in headers if name == b":path"), b"")
            if path in logged:
                capture = PayloadCapture(
                    self.spec, headers, self._request_id(headers), self._submit, path.decode()
                )
                capture.request_left_out(body_size)
                capture.call_answered(*response_status(response), self._revision)
            return response

        return logged_refusal

    def answer(self, capture: PayloadCapture, response: HttpResponse) -> HttpResponse:
        """The response, as it is sent; its record goes to the logger once its body is whole."""
        headers = list(response.headers)
        if response.content_type is not None:
            headers.insert(0, (b"content-type", response.content_type))
        capture.response_head(response.status, headers)
        if response.stream is None:
            capture.response_body(response.body)
            capture.answered(self._revision)
            return response
        response.stream = self._streamed(capture, response.stream)
        return response

    @staticmethod
    def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
        request_id = next((value for name, value in headers if name.lower() == b"x-request-id"), b"")
        return header_text(request_id) or random_uuid()

    async def _streamed(self, capture: PayloadCapture, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The stream's pieces as they go; the answer is logged once the stream ends whole."""
        try:
            async for piece in stream:
                capture.response_body(piece)
                yield piece
            capture.answered(self._revision)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:  # a client that left ends the stream (a generation) it was reading
                await close()
