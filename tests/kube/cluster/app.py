"""The HTTP side of the test API server: Kubernetes' paths, verbs, content types and Status errors,
as an ASGI application."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import yaml

from . import webhooks
from .kinds import ApiKind, find_kind
from .store import ApiError, Event, Store, matches, parse_selector

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
REVIEWED = ("serving.kserve.io",)  # groups whose writes pass through validating webhooks


@dataclass(frozen=True)
class Target:
    kind: ApiKind
    namespace: str | None  # None: every namespace (list and watch)
    name: str | None
    subresource: str | None


def parse_path(path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    kind = find_kind(group, version, rest[0])
    if kind is None or (namespace is not None and not kind.namespaced):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if subresource not in (None, "status") or len(rest) > 3:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if not kind.namespaced:
        namespace = ""
    return Target(kind, namespace, name, subresource)


class ApiServer:
    def __init__(self) -> None:
        self.store = Store()

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            if scope["path"] in ("/healthz", "/readyz", "/livez"):
                await _send(send, 200, {"status": "ok"})
                return
            target = parse_path(scope["path"])
            method = scope["method"]
            if method == "GET" and query.get("watch") in ("true", "1"):
                await self._watch(target, query, receive, send)
                return
            body = await _read_body(receive)
            status, result, warnings = await self._handle(method, target, query, headers, body)
            await _send(send, status, result, warnings)
        except ApiError as error:
            await _send(send, error.code, error.status())

    async def _handle(
        self, method: str, target: Target, query: dict, headers: dict, body: bytes
    ) -> tuple[int, dict, list[str]]:
        store, kind = self.store, target.kind
        manager = query.get("fieldManager") or "unknown"
        status_only = target.subresource == "status"
        if method == "GET" and target.name is None:
            selector = parse_selector(query.get("labelSelector"))
            items = [o for o in store.list(kind, target.namespace) if matches(o, selector)]
            listing = {
                "apiVersion": kind.api_version,
                "kind": f"{kind.kind}List",
                "metadata": {"resourceVersion": str(store.revision)},
                "items": items,
            }
            return 200, listing, []
        if method == "GET":
            return 200, store.get(kind, target.namespace, target.name), []
        if method == "DELETE":
            options = json.loads(body) if body else {}
            policy = query.get("propagationPolicy") or options.get("propagationPolicy")
            return 200, store.delete(kind, target.namespace, target.name, orphan=policy == "Orphan"), []
        if target.namespace is None:
            raise ApiError(405, "MethodNotAllowed", "writes need a namespace")
        obj = _decode(body, headers.get("content-type", ""))
        if method == "POST" and target.name is None:
            write = lambda: store.create(kind, target.namespace, obj, manager)  # noqa: E731
            return 201, *await self._reviewed(kind, "CREATE", None, write)
        if target.name is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} needs a name")
        if method == "PUT":
            old = store.get(kind, target.namespace, target.name)
            write = lambda: store.update(kind, target.namespace, obj, manager, status=status_only)  # noqa: E731
            return 200, *await self._reviewed(kind, "UPDATE", old, write, status_only)
        if method == "PATCH":
            content_type = headers.get("content-type", "").split(";")[0].strip()
            if content_type == APPLY_PATCH and not status_only:
                if "fieldManager" not in query:
                    raise ApiError(
                        422, "Invalid", "PatchOptions.meta.k8s.io is invalid: fieldManager: Required value"
                    )
                force = query.get("force") == "true"
                old = store.objects.get((kind, target.namespace, target.name))
                write = lambda: store.apply(kind, target.namespace, target.name, obj, manager, force)  # noqa: E731
                return 200, *await self._reviewed(kind, "UPDATE" if old else "CREATE", old, write)
            if content_type in (MERGE_PATCH, STRATEGIC_PATCH):
                old = store.get(kind, target.namespace, target.name)
                write = lambda: store.merge_patch(  # noqa: E731
                    kind, target.namespace, target.name, obj, manager, status=status_only
                )
                return 200, *await self._reviewed(kind, "UPDATE", old, write, status_only)
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format: {content_type}",
            )
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed")

    async def _reviewed(
        self,
        kind: ApiKind,
        operation: str,
        old: dict | None,
        write: Callable[[], dict],
        status_only: bool = False,
    ) -> tuple[dict, list[str]]:
        """Runs `write`, after the validating webhooks accepted what it would store."""
        warnings: list[str] = []
        if kind.group in REVIEWED and not status_only:
            with self.store.dry_run():
                prospective = write()
            warnings = await webhooks.review(self.store, kind, operation, prospective, old)
        return write(), warnings

    async def _watch(self, target: Target, query: dict, receive: Receive, send: Send) -> None:
        store, kind = self.store, target.kind
        selector = parse_selector(query.get("labelSelector"))
        queue: asyncio.Queue[Event] = asyncio.Queue()
        store.watchers.add(queue)
        try:
            since = query.get("resourceVersion")
            if since and since != "0":
                backlog = store.events_since(int(since))
                if backlog is None:
                    await _start_stream(send)
                    expired = ApiError(
                        410, "Expired", f"too old resource version: {since} ({store.revision})"
                    )
                    await _send_line(send, {"type": "ERROR", "object": expired.status()})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
            else:
                backlog = [Event(0, "ADDED", kind, obj) for obj in store.list(kind, target.namespace)]
            await _start_stream(send)
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
            disconnected = asyncio.ensure_future(_disconnect(receive))
            deadline = asyncio.get_running_loop().time() + timeout if timeout else None
            for event in backlog:
                if self._wanted(event, target, selector):
                    await _send_line(send, {"type": event.type, "object": event.obj})
            while not disconnected.done():
                remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if remaining is not None and remaining <= 0:
                    break
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, disconnected}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    continue
                event = getter.result()
                if self._wanted(event, target, selector):
                    await _send_line(send, {"type": event.type, "object": event.obj})
            if not disconnected.done():
                disconnected.cancel()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            store.watchers.discard(queue)

    @staticmethod
    def _wanted(event: Event, target: Target, selector: list) -> bool:
        namespace = (event.obj.get("metadata") or {}).get("namespace") or ""
        return (
            event.kind == target.kind
            and (target.namespace is None or namespace == target.namespace)
            and matches(event.obj, selector)
        )


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _decode(body: bytes, content_type: str) -> dict:
    try:
        obj = yaml.safe_load(body) if "yaml" in content_type else json.loads(body or b"{}")
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, "BadRequest", f"the body cannot be read: {exc}") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", "the body must be an object")
    return obj


async def _send(send: Send, status: int, body: dict, warnings: list[str] = ()) -> None:
    headers = [(b"content-type", b"application/json")]
    headers += [(b"warning", f'299 - "{w}"'.encode()) for w in warnings]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def _start_stream(send: Send) -> None:
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _send_line(send: Send, event: dict) -> None:
    await send({"type": "http.response.body", "body": json.dumps(event).encode() + b"\n", "more_body": True})
