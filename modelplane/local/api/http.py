"""The HTTP plumbing of the control-plane API over raw ASGI: requests in, JSON out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from modelplane.api.errors import LoadError
from modelplane.api.loader import MAX_DEPTH, load_text, nested_deeper_than
from modelplane.local.api.errors import ApiError, BadRequest, RequestEntityTooLarge
from modelplane.local.api.guard import YAML_TYPES
from modelplane.local.api.protobuf import PROTOBUF, read_object
from modelplane.local.api.server_side_apply import APPLY_PATCH
from modelplane.protocol.http1_wire import warning_headers

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

MAX_BODY_BYTES = 3 * 1024 * 1024  # Kubernetes' own request limit


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    headers: dict[str, str]
    receive: Receive

    @classmethod
    def from_scope(cls, scope: dict[str, Any], receive: Receive) -> ApiRequest:
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        return cls(scope["method"], scope["path"], query, content_type, headers, receive)

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("true", "1")

    async def body(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise RequestEntityTooLarge(f"the request body is larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; BadRequest if it is anything else."""
        raw = await self.body()
        if self.content_type in YAML_TYPES or self.content_type == APPLY_PATCH:
            return _one_yaml_resource(raw)
        if self.content_type == PROTOBUF:
            return read_object(raw)
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise BadRequest("the request body must be a JSON object")
        if nested_deeper_than(value, MAX_DEPTH):
            raise BadRequest(f"the request body is nested more than {MAX_DEPTH} levels deep")
        return value


def _one_yaml_resource(raw: bytes) -> dict[str, Any]:
    """A YAML body, read as `modelplane apply` reads files (timestamps stay strings); its metadata is
    checked as any body's is (server.py)."""
    try:
        documents = load_text(raw.decode("utf-8"), source="request body", require_metadata=False)
    except (LoadError, UnicodeDecodeError) as exc:
        raise BadRequest(str(exc)) from None
    if len(documents) != 1:
        raise BadRequest(f"the request body must hold one resource, not {len(documents)}")
    return documents[0].resource


async def send_json(send: Send, code: int, body: Any, headers: Headers = ()) -> None:
    await send_payload(send, code, orjson.dumps(body), b"application/json", headers)


async def send_text(send: Send, code: int, text: str) -> None:
    await send_payload(send, code, text.encode(), b"text/plain; charset=utf-8")


async def send_payload(
    send: Send, code: int, payload: bytes, content_type: bytes, headers: Headers = ()
) -> None:
    """One whole response: `payload` as `content_type`, with any extra `headers`."""
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def send_error(send: Send, error: ApiError) -> None:
    await send_json(send, error.code, error.to_status(), warning_headers(error.warnings))


async def stream_json_lines(
    send: Send,
    receive: Receive,
    lines: AsyncIterator[dict[str, Any]],
    *,
    timeout: float | None,
    closing: asyncio.Event,
) -> None:
    """Streams each item as one line of JSON until the items end, the client leaves, `timeout`
    seconds pass or `closing` is set (the server is stopping)."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )

    async def pump() -> None:
        async for item in lines:
            await send({"type": "http.response.body", "body": orjson.dumps(item) + b"\n", "more_body": True})

    async def client_gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    tasks = {
        asyncio.ensure_future(pump()),
        asyncio.ensure_future(client_gone()),
        asyncio.ensure_future(closing.wait()),
    }
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    await send({"type": "http.response.body", "body": b"", "more_body": False})
