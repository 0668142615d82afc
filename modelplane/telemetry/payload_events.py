"""The CloudEvents of payload logging, as KServe's agent sends them.

Each logged request, and each logged response, is one CloudEvent: type
`org.kubeflow.serving.inference.request` or `.response`, the id of the request (its `ce-id` header,
else its `x-request-id`) on both, the body as the event's data with its content type, and KServe's
extension attributes (`inferenceservicename`, `namespace`, `component`, `endpoint`, `metadata`,
`annotations`, `recordedtime`). A response event also says its status (`statuscode`), since every
answer is logged, errors too, and the revision that answered (`revision`). A body too large to keep
is left out, and `dataomitted` gives its size. A gRPC call's events say its method (`grpcmethod`), and
its response event the call's status (`grpcstatus`, `grpcmessage`; `statuscode` is the HTTP status
that means the same); their data is the call's messages as they passed, in gRPC's framing.

In binary mode (what an HTTP sink gets) the attributes are `ce-*` headers, as KServe's agent writes
them (JSON as it is), with `%` and what a header cannot carry percent-encoded as the CloudEvents HTTP
binding asks; in the JSON format (what a file sink writes, one event a line) they are
members of one object, with the data under `data` when it is JSON and `data_base64` otherwise.

A record is what the gateway keeps of a request or an answer: the body as it passed (the bytes already
in hand, never re-encoded) and the few values that differ from one event to the next. What a logger's
events share (type, source, the service's names, annotations) is rendered once per logger
(`PayloadLogSpec`), and the time stamps' date and time of day once per second.
"""

from __future__ import annotations

import base64
import functools
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import quote

import orjson

if TYPE_CHECKING:
    from modelplane.telemetry.payload_blob import BlobLogTarget

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
MODES = ("all", "request", "response")
SPEC_VERSION = "1.0"

# Printable ASCII but percent goes as it is. KServe's agent (Go's CloudEvents SDK) encodes nothing, and
# the consumers written for it (Go's SDK, Python's cloudevents 1.x) decode nothing: `"`, in every
# `metadata` and `annotations` JSON, must reach them as it is. `%` and what a header cannot carry are
# percent-encoded as the HTTP binding asks (3.1.3.2), so that its decoders read every value right.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


@dataclass(frozen=True)
class PayloadLogSpec:
    """What one component's `logger` asks for, with the names its events carry.

    `annotations` are the service's annotations that `metadataAnnotations` names, with their values;
    `blob` what a logger whose `url` is a bucket asks for besides it.
    """

    url: str
    mode: str
    inference_service: str
    namespace: str
    component: str
    metadata_headers: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    endpoint: str = ""
    blob: BlobLogTarget | None = None

    @property
    def sink_key(self) -> object:
        """What the loggers that share a sink have in common: the URL, for an HTTP receiver or a file;
        for a bucket, the component too, as each component's objects are batched and named apart."""
        if self.blob is None:
            return self.url
        return (self.url, self.blob, self.namespace, self.inference_service, self.component)

    @property
    def logs_requests(self) -> bool:
        return self.mode in ("all", "request")

    @property
    def logs_responses(self) -> bool:
        return self.mode in ("all", "response")

    @cached_property
    def source(self) -> str:
        """The component's Kubernetes service name, `<service>-<component>.<namespace>`."""
        return f"{self.inference_service}-{self.component}.{self.namespace}"

    def metadata(self, headers: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
        """The request headers `metadataHeaders` names (matched in any case), keyed as the spec spells them."""
        if not self.metadata_headers:
            return {}
        wanted = self._wanted_headers
        found: dict[str, list[str]] = {}
        for name, value in headers:
            spelled = wanted.get(name.lower())
            if spelled is not None:
                found.setdefault(spelled, []).append(header_text(value))
        return found

    @cached_property
    def _wanted_headers(self) -> dict[bytes, str]:
        return {name.lower().encode("latin-1"): name for name in self.metadata_headers}

    # -- what all its events share ---------------------------------------------------------------

    @cached_property
    def shared_attributes(self) -> dict[str, str]:
        """The attributes every event of this logger has, but its type, id and times."""
        shared = {
            "source": self.source,
            "inferenceservicename": self.inference_service,
            "namespace": self.namespace,
            "component": self.component,
            "endpoint": self.endpoint,
        }
        if self.annotations:
            shared["annotations"] = orjson.dumps(dict(self.annotations)).decode()
        return shared

    @cached_property
    def binary_lines(self) -> tuple[bytes, bytes]:
        """The `ce-*` header lines every request event, and every response event, of this logger has."""
        shared = "".join(
            f"ce-{name}: {_header_value(value)}\r\n" for name, value in self.shared_attributes.items()
        )
        return tuple(
            f"ce-specversion: {SPEC_VERSION}\r\nce-type: {kind}\r\n{shared}".encode("latin-1")
            for kind in (REQUEST_TYPE, RESPONSE_TYPE)
        )


_EMPTY_METADATA_LINE = b"ce-metadata: {}\r\n"


@dataclass(slots=True)
class PayloadRecord:
    """One request or response as the gateway saw it: the raw material of an event. Rendering it
    (`binary_head`, `json_line`) is left to the payload logger, off the request's path."""

    spec: PayloadLogSpec
    is_request: bool
    id: str
    time_ns: int  # nanoseconds since the epoch: the request's arrival, or the response's end
    content_type: str | None
    data: bytes
    metadata: dict[str, list[str]]
    status: int | None = None  # responses only
    revision: str | None = None  # responses only: the revision that answered
    omitted: int | None = None  # the size of a body too large to be kept, which the event leaves out
    grpc_method: str | None = None  # a gRPC call's: `/<service>/<method>`
    grpc_status: int | None = None  # responses to gRPC calls: the call's status code...
    grpc_message: str | None = None  # ... and its message, when it has one

    @property
    def type(self) -> str:
        return REQUEST_TYPE if self.is_request else RESPONSE_TYPE

    def binary_head(self, request_line: bytes, recorded: bytes) -> bytes:
        """The head of the HTTP request that carries the event in binary mode: `request_line` (the
        request line and Host header, each ending in CRLF), its `ce-*` headers and Content-Length, and
        the empty line; `recorded` is the time it is sent (`rfc3339`)."""
        more = b""  # the headers only some events have
        if self.status is not None:
            more = b"ce-statuscode: %d\r\n" % self.status
        if self.revision:
            more += _revision_line(self.revision)
        if self.omitted is not None:
            more += b"ce-dataomitted: %d\r\n" % self.omitted
        if self.grpc_method is not None:
            more += self._grpc_lines()
        if self.content_type:
            more += _content_type_line(self.content_type)
        metadata = self.metadata
        return b"%s%sce-id: %s\r\nce-time: %s\r\nce-recordedtime: %s\r\n%s%sContent-Length: %d\r\n\r\n" % (
            request_line,
            self.spec.binary_lines[0 if self.is_request else 1],
            _header_value(self.id).encode("latin-1"),
            rfc3339(self.time_ns),
            recorded,
            _metadata_line(metadata) if metadata else _EMPTY_METADATA_LINE,
            more,
            len(self.data),
        )

    def _grpc_lines(self) -> bytes:
        lines = b"ce-grpcmethod: %s\r\n" % _header_value(self.grpc_method).encode("latin-1")
        if self.grpc_status is not None:
            lines += b"ce-grpcstatus: %d\r\n" % self.grpc_status
        if self.grpc_message:
            lines += b"ce-grpcmessage: %s\r\n" % _header_value(self.grpc_message).encode("latin-1")
        return lines

    def attributes(self, recorded_ns: int) -> dict[str, str]:
        """Every context attribute, the extensions included, but the data's content type."""
        attributes = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "type": self.type,
            "time": rfc3339(self.time_ns).decode(),
            **self.spec.shared_attributes,
            "metadata": orjson.dumps(self.metadata).decode(),
            "recordedtime": rfc3339(recorded_ns).decode(),
        }
        if self.status is not None:
            attributes["statuscode"] = str(self.status)
        if self.revision:
            attributes["revision"] = self.revision
        if self.omitted is not None:
            attributes["dataomitted"] = str(self.omitted)
        if self.grpc_method is not None:
            attributes["grpcmethod"] = self.grpc_method
            if self.grpc_status is not None:
                attributes["grpcstatus"] = str(self.grpc_status)
            if self.grpc_message:
                attributes["grpcmessage"] = self.grpc_message
        return attributes

    def json_line(self, recorded_ns: int) -> bytes:
        """The event in the CloudEvents JSON format, on one line ending in a newline."""
        document: dict = self.attributes(recorded_ns)
        if self.content_type:
            document["datacontenttype"] = self.content_type
        if self.data:
            if _is_json(self.content_type) and _parses(self.data):
                document["data"] = orjson.Fragment(_on_one_line(self.data))
            else:
                document["data_base64"] = base64.b64encode(self.data).decode()
        return orjson.dumps(document) + b"\n"


def header_text(value: bytes) -> str:
    """A header's value as text: UTF-8 where it is (what clients send, and what KServe's agent, in Go,
    passes on), else Latin-1, byte for byte."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _header_value(value: str) -> str:
    """A value as a header carries it: percent-encoded only where it must be (most values need not)."""
    if value.isascii() and value.isprintable() and "%" not in value and value.strip(" ") == value:
        return value
    encoded = quote(value, safe=_HEADER_SAFE)
    # A header's value loses the spaces at its ends.
    inside = encoded.strip(" ")
    leading = len(encoded) - len(encoded.lstrip(" "))
    return "%20" * leading + inside + "%20" * (len(encoded) - leading - len(inside))


def _metadata_line(metadata: dict[str, list[str]]) -> bytes:
    return b"ce-metadata: %s\r\n" % _header_value(orjson.dumps(metadata).decode()).encode("latin-1")


# A route's events name one revision or a few, in one content type or a few: their lines are made once.
@functools.lru_cache(maxsize=256)
def _revision_line(revision: str) -> bytes:
    return b"ce-revision: %s\r\n" % _header_value(revision).encode("latin-1")


@functools.lru_cache(maxsize=256)
def _content_type_line(content_type: str) -> bytes:
    return b"Content-Type: %s\r\n" % content_type.encode("latin-1")


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _on_one_line(data: bytes) -> bytes:
    """Valid JSON without its line breaks: in JSON they can only be whitespace between tokens (a string
    has them escaped), and a pretty-printed body must not split its event's line."""
    if b"\n" not in data and b"\r" not in data:
        return data
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


_second: tuple[int, bytes] = (-1, b"")  # the last second formatted, and its date and time of day


def rfc3339(ns: int) -> bytes:
    """A time (nanoseconds since the epoch) as RFC 3339 in UTC, to the microsecond: 2026-05-04T10:21:07.114211Z."""
    global _second
    seconds, rest = divmod(ns, 1_000_000_000)
    second, prefix = _second
    if seconds != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode()
        _second = (seconds, prefix)
    return b"%s.%06dZ" % (prefix, rest // 1000)
