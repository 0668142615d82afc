"""The CloudEvents of payload logging, as KServe's agent sends them.

Each logged request, and each logged response, is one CloudEvent: type
`org.kubeflow.serving.inference.request` or `.response`, the id of the request (its `ce-id` header,
else its `x-request-id`) on both, the body as the event's data with its content type, and KServe's
extension attributes (`inferenceservicename`, `namespace`, `component`, `endpoint`, `metadata`,
`annotations`, `recordedtime`). A response event also says its status (`statuscode`), since every
answer is logged, errors too, and the revision that answered (`revision`). A body too large to keep
is left out, and `dataomitted` gives its size.

In binary mode (what an HTTP sink gets) the attributes are `ce-*` headers, percent-encoded as the
CloudEvents HTTP binding asks; in the JSON format (what a file sink writes, one event a line) they are
members of one object, with the data under `data` when it is JSON and `data_base64` otherwise.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import orjson

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
MODES = ("all", "request", "response")
SPEC_VERSION = "1.0"

# Printable ASCII but space, double quote and percent is sent as it is (CloudEvents HTTP binding 3.1.3.2).
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')


@dataclass(frozen=True)
class PayloadLogSpec:
    """What one component's `logger` asks for, with the names its events carry.

    `annotations` are the service's annotations that `metadataAnnotations` names, with their values.
    """

    url: str
    mode: str
    inference_service: str
    namespace: str
    component: str
    metadata_headers: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    endpoint: str = ""

    @property
    def logs_requests(self) -> bool:
        return self.mode in ("all", "request")

    @property
    def logs_responses(self) -> bool:
        return self.mode in ("all", "response")

    def metadata(self, headers: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
        """The request headers `metadataHeaders` names (matched in any case), keyed as the spec spells them."""
        if not self.metadata_headers:
            return {}
        wanted = {name.lower().encode("latin-1"): name for name in self.metadata_headers}
        found: dict[str, list[str]] = {}
        for name, value in headers:
            spelled = wanted.get(name.lower())
            if spelled is not None:
                found.setdefault(spelled, []).append(value.decode("latin-1"))
        return found


@dataclass(slots=True)
class PayloadRecord:
    """One request or response as the gateway saw it: the raw material of an event. Turning it into
    an event (`to_event`) is left to the thread that delivers it, off the request's path."""

    spec: PayloadLogSpec
    is_request: bool
    id: str
    source: str
    time: float  # seconds since the epoch: the request's arrival, or the response's end
    content_type: str | None
    data: bytes
    metadata: dict[str, list[str]]
    status: int | None = None  # responses only
    revision: str | None = None  # responses only: the revision that answered
    omitted: int | None = None  # the size of a body too large to be kept, which the event leaves out

    def to_event(self, recorded: float) -> PayloadEvent:
        spec = self.spec
        extensions = {
            "inferenceservicename": spec.inference_service,
            "namespace": spec.namespace,
            "component": spec.component,
            "endpoint": spec.endpoint,
            "metadata": orjson.dumps(self.metadata).decode(),
            "recordedtime": _rfc3339(recorded),
        }
        if spec.annotations:
            extensions["annotations"] = orjson.dumps(dict(spec.annotations)).decode()
        if self.status is not None:
            extensions["statuscode"] = str(self.status)
        if self.revision:
            extensions["revision"] = self.revision
        if self.omitted is not None:
            extensions["dataomitted"] = str(self.omitted)
        return PayloadEvent(
            type=REQUEST_TYPE if self.is_request else RESPONSE_TYPE,
            id=self.id,
            source=self.source,
            time=_rfc3339(self.time),
            content_type=self.content_type,
            data=self.data,
            extensions=extensions,
        )


@dataclass(slots=True)
class PayloadEvent:
    type: str
    id: str
    source: str
    time: str
    content_type: str | None
    data: bytes
    extensions: dict[str, str]

    def attributes(self) -> dict[str, str]:
        """Every context attribute, the extensions included, but the data's content type."""
        return {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            **self.extensions,
        }

    def binary_headers(self) -> bytes:
        """The HTTP header lines of the event in binary mode (each ending in CRLF)."""
        lines = [f"ce-{name}: {_header_value(value)}\r\n" for name, value in self.attributes().items()]
        if self.content_type:
            lines.append(f"Content-Type: {self.content_type}\r\n")
        return "".join(lines).encode("latin-1")

    def json_line(self) -> bytes:
        """The event in the CloudEvents JSON format, on one line ending in a newline."""
        document: dict = self.attributes()
        if self.content_type:
            document["datacontenttype"] = self.content_type
        if self.data:
            if _is_json(self.content_type) and _parses(self.data):
                document["data"] = orjson.Fragment(self.data)
            else:
                document["data_base64"] = base64.b64encode(self.data).decode()
        return orjson.dumps(document) + b"\n"


def _header_value(value: str) -> str:
    """A value as the HTTP binding writes it: percent-encoded where it must be (most values need not)."""
    if value.isascii() and value.isprintable() and not (" " in value or '"' in value or "%" in value):
        return value
    return quote(value, safe=_HEADER_SAFE)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
