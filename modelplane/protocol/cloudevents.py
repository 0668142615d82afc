"""CloudEvents in and out of the inference endpoints, in binary and structured mode.

A request that is a CloudEvent (binary mode: `ce-*` headers; structured mode: content type
`application/cloudevents+json`) is unwrapped before the model sees it, and its response goes back as a
CloudEvent in the same mode. The response's `type` and `source` come from `CE_TYPE` and `CE_SOURCE`;
with `CE_MERGE=true` the request's attributes are carried over into the response.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.random_ids import random_uuid

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_TYPE = "io.kserve.inference.response"
_REQUIRED = ("specversion", "id", "source", "type")


@dataclass(slots=True)
class IncomingEvent:
    structured: bool
    attributes: dict[str, str]
    data: bytes


def from_request(headers: dict[str, str], body: bytes) -> IncomingEvent | None:
    """The CloudEvent a request carries, or None when it is a plain request."""
    content_type = headers.get("content-type", "")
    if content_type.startswith(STRUCTURED_CONTENT_TYPE):
        return _structured(body)
    if "ce-specversion" in headers:
        attributes = {key[3:]: value for key, value in headers.items() if key.startswith("ce-")}
        missing = [name for name in _REQUIRED if name not in attributes]
        if missing:
            raise InvalidInput(f"binary CloudEvent is missing the header(s) ce-{', ce-'.join(missing)}")
        if "json" in content_type and body:
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"Failed to decode or parse binary json cloudevent: {exc}") from None
        return IncomingEvent(False, attributes, body)
    return None


def _structured(body: bytes) -> IncomingEvent:
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Failed to decode or parse structured cloudevent: {exc}") from None
    if not isinstance(event, dict):
        raise InvalidInput("a structured CloudEvent must be a JSON object")
    missing = [name for name in _REQUIRED if name not in event]
    if missing:
        raise InvalidInput(f"structured CloudEvent is missing the attribute(s) {', '.join(missing)}")
    if "data_base64" in event:
        encoded = event["data_base64"]
        if not isinstance(encoded, str):
            raise InvalidInput(f"CloudEvent data_base64 must be a string, got {type(encoded).__name__}")
        try:
            data = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise InvalidInput(f"CloudEvent data_base64 is not valid base64: {exc}") from None
    elif isinstance(event.get("data"), str):
        data = event["data"].encode()
    else:
        data = orjson.dumps(event.get("data"))
    attributes = {key: str(value) for key, value in event.items() if key not in ("data", "data_base64")}
    return IncomingEvent(True, attributes, data)


def to_response(
    event: IncomingEvent, model_name: str, body: bytes, content_type: str = "application/json"
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of the CloudEvent answering `event`."""
    attributes: dict[str, str] = {}
    if os.environ.get("CE_MERGE", "false").lower() in ("true", "1", "yes", "on"):
        attributes.update(event.attributes)
    attributes.update(
        {
            "specversion": "1.0",
            "id": random_uuid(),
            "source": os.environ.get("CE_SOURCE", f"io.kserve.inference.{model_name}"),
            "type": os.environ.get("CE_TYPE", DEFAULT_TYPE),
            "time": datetime.now(UTC).isoformat(),
        }
    )
    if not event.structured:
        headers = [(b"content-type", content_type.encode())]
        headers += [(f"ce-{key}".encode(), str(value).encode()) for key, value in attributes.items()]
        return headers, body
    attributes.pop("datacontenttype", None)
    document: dict = {**attributes, "datacontenttype": content_type}
    if content_type.split(";", 1)[0].strip() == "application/json":
        document["data"] = orjson.Fragment(body)
    else:
        document["data_base64"] = base64.b64encode(body).decode()
    return [(b"content-type", STRUCTURED_CONTENT_TYPE.encode())], orjson.dumps(document)
