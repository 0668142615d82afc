"""The control-plane API: the store's resources at Kubernetes-style paths, over HTTP.

    /apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices[/{name}[/status]]
    /apis/serving.kserve.io/v1alpha1/namespaces/{ns}/{servingruntimes|inferencegraphs|trainedmodels}[...]
    /apis/serving.kserve.io/v1alpha1/clusterservingruntimes[/{name}[/status]]
    /api/v1/namespaces/{ns}/events[/{name}], /api/v1/events

GET (list, or `?watch=true` for newline-delimited events), POST (create, 201), PUT (replace),
PATCH (`application/merge-patch+json`), DELETE, with Kubernetes' status codes and `Status` errors;
a GET answers a `Table` when asked (api/tables.py), and writes take `dryRun` and `fieldValidation`
(api/write_options.py). `/apis/serving.kserve.io/v1beta1/inferenceservices` lists every namespace.
Also served: `GET /healthz`, `GET /version`, discovery under `GET /apis`, the OpenAPI v3 documents under
`GET /openapi/v3` (api/openapi.py), and `POST /modelplane/v1/apply`, which creates or replaces a
`List` of resources in one transaction (all stored, or none), and `GET /metrics` when the platform
gives the app its metrics (Prometheus text).

`serve_api(store, host, port)` (or `ApiServer`) runs it on uvicorn; `python -m
modelplane.local.api.server --home DIR --port 0` runs it on its own and prints its address.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import socket
import ssl
import sys
from asyncio.constants import SSL_HANDSHAKE_TIMEOUT
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvicorn
import uvloop

from modelplane.api.kinds import (
    CLUSTER_SERVING_RUNTIME,
    CONFIG_MAP,
    EVENT,
    SECRET,
    SERVICE_ACCOUNT,
    Kind,
    kind_of,
)
from modelplane.api.secrets import redacted
from modelplane.graph.graph_warnings import graph_warnings
from modelplane.local.api import discovery as api_discovery
from modelplane.local.api import openapi as api_openapi
from modelplane.local.api.access_reviews import REVIEW_PATHS, review
from modelplane.local.api.admission import default_admission
from modelplane.local.api.auth import BearerToken, TokenFileError, read_token_file
from modelplane.local.api.builtins import BuiltinRuntimes
from modelplane.local.api.connection import GuardedConnection
from modelplane.local.api.errors import (
    ApiError,
    BadRequest,
    Expired,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
    invalid_details,
    precondition_failed,
)
from modelplane.local.api.guard import SameSiteGuard
from modelplane.local.api.http import (
    ApiRequest,
    Send,
    send_error,
    send_json,
    send_payload,
    send_text,
    stream_json_lines,
)
from modelplane.local.api.json_patch import JSON_PATCH, apply_json_patch, read_json_patch
from modelplane.local.api.managed_fields import UpdateOwnership, manager_named
from modelplane.local.api.meta import invalid_field, now_rfc3339
from modelplane.local.api.metadata_types import check_metadata_types
from modelplane.local.api.metrics import MeasuredSend, request_labels
from modelplane.local.api.openapi_v2 import V2_PATH, v2_document
from modelplane.local.api.patch import MERGE_PATCH, STRATEGIC_MERGE_PATCH, merge_patch, strategic_patch
from modelplane.local.api.paths import kind_at
from modelplane.local.api.selectors import parse_selectors
from modelplane.local.api.server_side_apply import (
    APPLY_PATCH,
    ServerSideApply,
    apply_options,
    check_not_an_apply,
)
from modelplane.local.api.services import services_answer, services_at
from modelplane.local.api.settings import DEFAULT_API_HOST, DEFAULT_API_PORT
from modelplane.local.api.store import Ref, Store, WatchEvent, ref_of, store_path
from modelplane.local.api.store_faults import STORE_FAULTS
from modelplane.local.api.tables import TableRequest, table, table_events, table_request
from modelplane.local.api.unhonored_fields import first_revision_warnings, unhonored_warnings
from modelplane.local.api.watch_list import initial_events_end, send_initial_events
from modelplane.local.api.write_options import DeleteOptions, WriteOptions
from modelplane.local.tls import TLSFiles
from modelplane.protocol.http1_wire import warning_headers
from modelplane.protocol.listening import listening_socket, url_host
from modelplane.protocol.tls_or_plain import TLSOrPlainHTTP

log = logging.getLogger(__name__)

APPLY_PATH = "/modelplane/v1/apply"
METRICS_PATH = "/metrics"
HANDOVER_WINDOW = 0.5  # seconds a restart in place waits for connections to lie between requests
HANDOVER_POLL = 0.02  # seconds between looks at the connections left meanwhile
# The platform's metrics, as (Prometheus text, its content type).
MetricsSource = Callable[[], Awaitable[tuple[bytes, str]]]


@dataclass(frozen=True)
class Target:
    """What a resource URL names: a kind, a namespace (None: all), a name and a subresource."""

    kind: Kind
    namespace: str | None
    name: str | None = None
    subresource: str | None = None

    def ref(self) -> Ref:
        return Ref(self.kind.kind, self.namespace or "", self.name or "")


class ApiApp:
    """The ASGI application serving one store.

    Store calls run in worker threads: a write waits for the disk and for admission, and the
    event loop may be serving other traffic in the meantime (the gateway shares the process).
    `guard` refuses what a web page could send (api/guard.py); by default the API answers to
    loopback names only.
    """

    def __init__(self, store: Store, guard: SameSiteGuard | None = None, token: BearerToken | None = None):
        self.store = store
        self.guard = guard or SameSiteGuard.for_address(DEFAULT_API_HOST)
        self.token = token
        self.metrics: MetricsSource | None = None  # served at /metrics once set
        self.builtins = BuiltinRuntimes(now_rfc3339())
        self._closing = asyncio.Event()

    def end_watches(self) -> None:
        """Ends every open watch stream, so the server can stop without waiting for clients."""
        self._closing.set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = ApiRequest.from_scope(scope, receive)
        send = MeasuredSend(send, request_labels(request, APPLY_PATH))
        try:
            self.guard.check(request.method, request.headers, request.content_type)
            if self.token is not None:
                self.token.check(request.path, request.headers)
            await self._route(request, send)
        except ApiError as error:
            await send_error(send, error)
        except Exception:
            log.exception("control-plane API: %s %s failed", request.method, request.path)
            if not send.responding:
                await send_error(send, ApiError("internal error; see the control plane's log"))
        finally:
            send.done()

    async def _route(self, request: ApiRequest, send: Send) -> None:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return await send_text(send, 200, "ok")
        if path == APPLY_PATH:
            return await self._apply(request, send)
        if path in REVIEW_PATHS:
            _only(request, "POST")
            answer = review(path, await request.json_object(), self.token is not None)
            return await send_json(send, 201, answer)
        if path == "/version":
            _only(request, "GET")
            return await send_json(send, 200, api_discovery.version_info())
        if path == api_openapi.ROOT_PATH or path.startswith(api_openapi.ROOT_PATH + "/"):
            return await self._openapi(request, send, path.removeprefix(api_openapi.ROOT_PATH))
        if path == V2_PATH:
            _only(request, "GET")
            document = await asyncio.to_thread(
                v2_document, request.headers.get("accept")
            )  # built once, slowly
            return await send_payload(send, 200, *document)
        if path == METRICS_PATH and self.metrics is not None:
            _only(request, "GET")
            body, content_type = await self.metrics()
            return await send_payload(send, 200, body, content_type.encode("latin-1"))
        parts = path.strip("/").split("/")
        if parts[0] == "api":  # the core group: /api/v1/...
            parts = ["apis", "", *parts[1:]]
        elif parts[0] != "apis" or parts[1:2] == [""]:
            raise NotFound(f"the server could not find the requested resource ({request.path})")
        if len(parts) <= 3:
            return await self._discovery(request, send, parts[1:])
        services = services_at(parts[3:]) if parts[1:3] == ["", "v1"] else None
        if services is not None:
            version = await asyncio.to_thread(self.store.resource_version)
            answer = services_answer(request.method, request.flag("watch"), services[1], version)
            return await send_json(send, 200, answer)
        target = _target(parts[1], parts[2], parts[3:])
        if target is None and parts[1:4] == ["", "v1", "namespaces"] and len(parts) <= 5:
            raise NotFound(
                "namespaces are not objects here: every namespace exists, and a resource names its own "
                f"({request.path})"
            )
        if target is None:
            raise NotFound(f"the server could not find the requested resource ({request.path})")
        if target.name is None:
            return await self._collection(request, send, target)
        return await self._object(request, send, target)

    async def _discovery(self, request: ApiRequest, send: Send, parts: list[str]) -> None:
        _only(request, "GET")
        if not parts:
            document = api_discovery.group_list()
        elif parts == [""]:
            document = api_discovery.core_versions()
        elif len(parts) == 1:
            document = api_discovery.api_group(parts[0])
        else:
            document = api_discovery.resource_list(parts[0], parts[1])
        if document is None:
            raise NotFound(f"the server could not find the requested resource ({request.path})")
        await send_json(send, 200, document)

    async def _openapi(self, request: ApiRequest, send: Send, path: str) -> None:
        _only(request, "GET")
        if not path:
            return await send_json(send, 200, api_openapi.discovery())
        document = api_openapi.document_bytes(path)
        if document is None:
            raise NotFound(f"the server could not find the requested resource ({request.path})")
        digest = api_openapi.document_hash(path)
        linked = request.query.get("hash") == digest  # a link that names these contents: cache them for good
        cache = b"public, immutable" if linked else b"no-cache, private"
        headers = [(b"cache-control", cache), (b"etag", f'"{digest}"'.encode())]
        await send_payload(send, 200, document, b"application/json", headers)

    # ---- collections ----

    async def _collection(self, request: ApiRequest, send: Send, target: Target) -> None:
        if request.method == "GET":
            if request.flag("watch"):
                return await self._watch(request, send, target)
            return await self._list(request, send, target)
        if request.method == "POST":
            if target.kind.namespaced and target.namespace is None:
                raise MethodNotAllowed(
                    f"create {target.kind.plural} in a namespace: POST .../namespaces/NS/..."
                )
            options = WriteOptions.from_query(request.query)
            owners = UpdateOwnership(target.kind, manager_named(request.query, request.headers))
            body = await request.json_object()
            _check_body(body, target)
            warnings = options.unknown_field_warnings(body, target.kind)
            create = functools.partial(
                self.store.create, dry_run=options.dry_run, record_owners=owners.record
            )
            with _warning_with_refusal(warnings):
                created = await asyncio.to_thread(create, body)
            headers = warning_headers(warnings + _written_warnings(created, created=True))
            return await send_json(send, 201, shown(created), headers)
        if request.method == "DELETE":
            return await self._delete_collection(request, send, target)
        raise MethodNotAllowed(f"{request.method} is not supported on a collection")

    async def _delete_collection(self, request: ApiRequest, send: Send, target: Target) -> None:
        """client-go's DeleteCollection: every object of a namespace (or, for a cluster-scoped kind,
        of the cluster) that the selectors match, each deleted as a DELETE of it would be, one after
        the other; the answer lists them as they were."""
        if target.kind.namespaced and target.namespace is None:
            raise MethodNotAllowed(
                f"delete {target.kind.plural} in a namespace: DELETE .../namespaces/NS/..."
            )
        matches = parse_selectors(
            request.query.get("labelSelector"),
            request.query.get("fieldSelector"),
            events=target.kind == EVENT,
        )
        deleting = DeleteOptions.read(request.query, await request.body())
        items, version = await asyncio.to_thread(self.store.list, target.kind.kind, _store_namespace(target))
        deleted = []
        for item in filter(matches, items):
            try:
                deleted.append(await self._delete(ref_of(item), deleting))
            except NotFound:
                continue  # gone meanwhile: a dependent of one deleted before it
        await send_json(send, 200, _list_of(target.kind, version, deleted))

    async def _delete(self, ref: Ref, deleting: DeleteOptions) -> dict[str, Any]:
        """Deletes one object as `deleting` says; the object as it was, as the API shows it."""
        delete = functools.partial(
            self.store.delete,
            ref,
            dry_run=deleting.dry_run,
            preconditions=deleting.preconditions,
            orphan_dependents=deleting.orphan_dependents,
        )
        return shown(await asyncio.to_thread(delete))

    async def _list(self, request: ApiRequest, send: Send, target: Target) -> None:
        send_initial_events(request.query, watch=False)
        matches = parse_selectors(
            request.query.get("labelSelector"),
            request.query.get("fieldSelector"),
            events=target.kind == EVENT,
        )
        items, version = await asyncio.to_thread(self.store.list, target.kind.kind, _store_namespace(target))
        if target.kind == CLUSTER_SERVING_RUNTIME:
            items = self.builtins.listed(items, version)
        items = [shown(item) for item in items if matches(item)]
        wanted = _table_wanted(request)
        if wanted is not None:
            return await send_json(send, 200, table(target.kind, items, wanted, version))
        await send_json(send, 200, _list_of(target.kind, version, items))

    async def _watch(self, request: ApiRequest, send: Send, target: Target) -> None:
        matches = parse_selectors(
            request.query.get("labelSelector"),
            request.query.get("fieldSelector"),
            events=target.kind == EVENT,
        )
        since = _resume_point(request.query.get("resourceVersion"))
        initial = send_initial_events(request.query, watch=True)
        timeout = _timeout(request.query.get("timeoutSeconds"))
        if initial is None:
            lines = _watch_lines(self.store.watch(target.kind.kind, _store_namespace(target), since), matches)
        else:
            lines = self._streaming_list(target, matches, since, initial)
        wanted = _table_wanted(request)
        if wanted is not None:
            lines = table_events(lines, target.kind, wanted)
        await stream_json_lines(send, request.receive, lines, timeout=timeout, closing=self._closing)

    async def _streaming_list(
        self, target: Target, matches: Callable[[dict[str, Any]], bool], since: int | None, initial: bool
    ) -> AsyncIterator[dict[str, Any]]:
        """A watch asked with `sendInitialEvents` (api/watch_list.py): with it true, the objects there
        are now (at least as new as any `resourceVersion` asked), then the bookmark that ends them;
        false, no initial events, from `since` or now."""
        kind, namespace = target.kind.kind, _store_namespace(target)
        if initial or since is None:
            items, version = await asyncio.to_thread(self.store.list, kind, namespace)
            if initial:
                for item in filter(matches, items):
                    yield {"type": "ADDED", "object": shown(item)}
                yield initial_events_end(target.kind, version)
            since = int(version)
        async for line in _watch_lines(self.store.watch(kind, namespace, since), matches):
            yield line

    # ---- single objects ----

    async def _object(self, request: ApiRequest, send: Send, target: Target) -> None:
        ref = target.ref()
        status_only = target.subresource == "status"
        if target.kind == CLUSTER_SERVING_RUNTIME:
            try:
                await asyncio.to_thread(self.store.get, ref)
            except NotFound:
                builtin = self.builtins.named(ref.name, await asyncio.to_thread(self.store.resource_version))
                if builtin is not None:
                    return await self._builtin_runtime(request, send, target, builtin)
                raise
        if request.method == "GET":
            return await _send_object(request, send, target, await asyncio.to_thread(self.store.get, ref))
        if request.method == "DELETE" and not status_only:
            deleting = DeleteOptions.read(request.query, await request.body())
            deleted = await self._delete(ref, deleting)
            return await send_json(
                send, 200, _deleted_status(deleted) if target.kind.deletes_answer_status else deleted
            )
        options = WriteOptions.from_query(request.query)
        if request.method == "PATCH" and request.content_type == APPLY_PATCH:
            return await self._server_side_apply(request, send, target, options)
        owners = UpdateOwnership(
            target.kind, manager_named(request.query, request.headers), target.subresource or ""
        )
        warnings: list[str] = []  # of fields the schema does not declare
        if request.method == "PUT":
            body = await request.json_object()
            _check_body(body, target)
            written = body
            change = _replace_with(body, target)
        elif request.method == "PATCH" and request.content_type == JSON_PATCH:
            check_not_an_apply(request.query)
            operations = read_json_patch(await request.body())
            written = None  # the fields it adds are known once it is applied
            change = _refusing_identity_changes(
                _json_patched(operations, options, target.kind, None if status_only else warnings), target
            )
        elif request.method == "PATCH":
            check_not_an_apply(request.query)
            written, apply_patch = await _patch_body(request, target)
            change = _refusing_identity_changes(apply_patch, target)
        else:
            raise MethodNotAllowed(f"{request.method} is not supported here")
        if not status_only and written is not None:
            warnings += options.unknown_field_warnings(written, target.kind)
        write = self.store.update_status if status_only else self.store.update
        before: list[dict[str, Any]] = []  # the object as the change found it

        def remembered(current: dict[str, Any]) -> dict[str, Any]:
            before[:] = [current]
            return change(current)

        with _warning_with_refusal(warnings):
            updated = await asyncio.to_thread(
                write, ref, remembered, dry_run=options.dry_run, record_owners=owners.record
            )
        if not status_only:
            warnings += _written_warnings(updated, created=False)
        await send_json(send, 200, shown(updated, *before), warning_headers(warnings))

    async def _server_side_apply(
        self, request: ApiRequest, send: Send, target: Target, options: WriteOptions
    ) -> None:
        """An apply patch (api/server_side_apply.py): the object merged with the configuration, or
        created from it (201) when there is none."""
        manager, force = apply_options(request.query)
        config = await request.json_object()
        _check_body(config, target)
        applying = ServerSideApply(target.kind, config, manager, force, target.subresource or "")
        status_only = target.subresource == "status"
        warnings = [] if status_only else options.unknown_field_warnings(config, target.kind)
        write = self.store.update_status if status_only else self.store.update
        before: list[dict[str, Any]] = []

        def remembered(current: dict[str, Any]) -> dict[str, Any]:
            before[:] = [current]
            return applying.change(current)

        update = functools.partial(write, dry_run=options.dry_run, record_owners=applying.record)
        create = functools.partial(self.store.create, dry_run=options.dry_run, record_owners=applying.record)
        with _warning_with_refusal(warnings):
            try:
                updated = await asyncio.to_thread(update, target.ref(), remembered)
            except NotFound:
                if status_only:
                    raise
                created = await asyncio.to_thread(create, applying.created())
                warnings += _written_warnings(created, created=True)
                return await send_json(send, 201, shown(created), warning_headers(warnings))
        if not status_only:
            warnings += _written_warnings(updated, created=False)
        await send_json(send, 200, shown(updated, *before), warning_headers(warnings))

    async def _builtin_runtime(self, request: ApiRequest, send: Send, target: Target, builtin: dict) -> None:
        """A built-in runtime is read like a stored one, and replaced by a PUT or PATCH, which stores
        the new one."""
        if request.method == "GET":
            return await _send_object(request, send, target, builtin)
        if request.method == "DELETE" or target.subresource == "status":
            raise self.builtins.not_stored(builtin["metadata"]["name"])
        owners = UpdateOwnership(target.kind, manager_named(request.query, request.headers)).record
        if request.method == "PUT":
            body = await request.json_object()
            _check_body(body, target)
        elif request.method == "PATCH" and request.content_type == APPLY_PATCH:
            config = await request.json_object()
            _check_body(config, target)
            applying = ServerSideApply(target.kind, config, *apply_options(request.query))
            body, owners = applying.change(self.builtins.replacement(builtin)), applying.record
        elif request.method == "PATCH" and request.content_type == JSON_PATCH:
            body = apply_json_patch(self.builtins.replacement(builtin), read_json_patch(await request.body()))
            if not isinstance(body, dict):
                raise BadRequest("the JSON patch leaves no object")
        elif request.method == "PATCH":
            if request.content_type != MERGE_PATCH:
                raise UnsupportedMediaType(f"a patch must be {MERGE_PATCH} or {JSON_PATCH}")
            body = merge_patch(self.builtins.replacement(builtin), await request.json_object())
        else:
            raise MethodNotAllowed(f"{request.method} is not supported here")
        options = WriteOptions.from_query(request.query)
        warnings = options.unknown_field_warnings(body, target.kind)
        body.setdefault("metadata", {}).pop("resourceVersion", None)
        create = functools.partial(self.store.create, dry_run=options.dry_run, record_owners=owners)
        with _warning_with_refusal(warnings):
            created = await asyncio.to_thread(create, body)
        await send_json(send, 201, created, warning_headers(warnings + unhonored_warnings(created)))

    # ---- all-or-nothing apply ----

    async def _apply(self, request: ApiRequest, send: Send) -> None:
        _only(request, "POST")
        body = await request.json_object()
        items = body.get("items")
        if body.get("kind") != "List" or not isinstance(items, list):
            raise BadRequest('apply takes {"kind": "List", "items": [...]}')
        default_namespace = request.query.get("namespace") or "default"
        options = WriteOptions.from_query(request.query)
        warnings: list[str] = []
        for index, item in enumerate(items):
            _prepare_apply_item(item, index, default_namespace)
            kind = kind_of(item)
            named = f"{kind.kind} {_item_name(item)}: "
            warnings += [named + w for w in options.unknown_field_warnings(item, kind)]
        with _warning_with_refusal(warnings):
            results = await asyncio.to_thread(self.store.apply, items, dry_run=options.dry_run)
        for result in results:
            kind = kind_of(result.object)
            warnings += [
                f"{kind.kind} {_item_name(result.object)}: {w}"
                for w in _written_warnings(result.object, created=result.action == "created")
            ]
        await send_json(
            send,
            200,
            {
                "apiVersion": "modelplane.io/v1",
                "kind": "ApplyResult",
                "items": [{"action": r.action, "object": shown(r.object)} for r in results],
            },
            warning_headers(warnings),
        )


def _target(group: str, version: str, rest: list[str]) -> Target | None:
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    kind = kind_at(group, version, rest[0])
    if kind is None or (namespace is not None and not kind.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    if name is not None and kind.namespaced and namespace is None:
        return None
    subresource = rest[2] if len(rest) == 3 else None
    if subresource is not None and subresource != "status" and kind.group:
        raise _no_subresource(kind, name or "", subresource)
    if subresource is not None and not kind.has_status_subresource:
        return None
    return Target(kind, namespace, name, subresource)


def _no_subresource(kind: Kind, name: str, subresource: str) -> NotFound:
    """What Kubernetes answers for a subresource a CRD does not declare (`kubectl scale isvc`: KServe's
    CRDs declare no scale): NotFound naming the object; its message, which says the object is not
    found, tells what is missing instead."""
    details = {"name": name, "group": kind.group, "kind": kind.plural}
    message = f'{kind.crd_name} "{name}" has no {subresource} subresource'
    if subresource == "scale":
        message += " (KServe's CRDs declare none): set the component's minReplicas and maxReplicas instead"
    return NotFound(message, details)


def _list_of(kind: Kind, version: int | str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": kind.api_version,
        "kind": f"{kind.kind}List",
        "metadata": {"resourceVersion": version},
        "items": items,
    }


def _deleted_status(deleted: dict[str, Any]) -> dict[str, Any]:
    """What Kubernetes answers a DELETE of a kind whose registry does not return the object: a success
    naming it (`details.kind` is the resource, as Kubernetes has it)."""
    kind = kind_of(deleted)
    metadata = deleted["metadata"]
    details = {"name": metadata["name"], "group": kind.group, "kind": kind.plural, "uid": metadata["uid"]}
    details = {key: value for key, value in details.items() if value}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _table_wanted(request: ApiRequest) -> TableRequest | None:
    return table_request(request.headers.get("accept"), request.query.get("includeObject"))


def shown(resource: dict[str, Any], before: dict[str, Any] | None = None) -> dict[str, Any]:
    """A resource as the API answers it: a Secret's values never leave the store (api/secrets.py);
    the answer to a write that found it as `before` marks the values it changed."""
    return redacted(resource, before) if resource.get("kind") == SECRET.kind else resource


async def _patch_body(
    request: ApiRequest, target: Target
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
    """A PATCH's body and the change it makes: a merge patch; for a Secret, a ConfigMap or a
    ServiceAccount also kubectl's strategic merge patch (patch.py)."""
    if request.content_type == STRATEGIC_MERGE_PATCH and target.kind in (SECRET, CONFIG_MAP, SERVICE_ACCOUNT):
        return strategic_patch(await request.json_object(), target.kind.kind)
    if request.content_type != MERGE_PATCH:
        raise UnsupportedMediaType(
            f"the body of the request was in an unknown format ({request.content_type or 'none'}) "
            f"- accepted media types include: {MERGE_PATCH}, {JSON_PATCH}, {APPLY_PATCH}; patch with a JSON "
            "merge patch (kubectl patch --type=merge), a JSON patch (--type=json) or server-side apply: a "
            "strategic merge patch is taken for a Secret, a ConfigMap or a ServiceAccount only"
        )
    patch = await request.json_object()
    return patch, _patched_with(patch)


async def _send_object(request: ApiRequest, send: Send, target: Target, obj: dict[str, Any]) -> None:
    """One object, or the one-row Table kubectl asks for when it prints it."""
    obj = shown(obj)
    wanted = _table_wanted(request)
    if wanted is None:
        return await send_json(send, 200, obj)
    version = str(obj.get("metadata", {}).get("resourceVersion", ""))
    await send_json(send, 200, table(target.kind, [obj], wanted, version))


def _only(request: ApiRequest, method: str) -> None:
    if request.method != method:
        raise MethodNotAllowed(f"{request.method} is not supported here")


def _store_namespace(target: Target) -> str | None:
    return target.namespace if target.kind.namespaced else ""


def _written_warnings(resource: dict, *, created: bool) -> list[str]:
    """What a write stores but modelplane will not do as written: fields not acted on (and, on a new
    service, what only a later change does), and what a graph says that its router evaluates or ignores
    otherwise than it looks (`graph_warnings`)."""
    first = first_revision_warnings(resource) if created else []
    return unhonored_warnings(resource) + first + [str(warning) for warning in graph_warnings(resource)]


def _check_body(body: dict[str, Any], target: Target) -> None:
    """A body must be of the URL's kind, in its namespace and (for one object) of its name,
    as Kubernetes insists; a body without a namespace takes the URL's. A body of one of Kubernetes'
    own kinds without an `apiVersion` or a `kind` takes the URL's too, as the API server decodes one
    (the kubernetes Python client sends a `V1Secret` made without them so)."""
    kind = target.kind
    if not kind.group:
        for field, value in (("apiVersion", kind.api_version), ("kind", kind.kind)):
            if not body.get(field):
                body[field] = value
    if body.get("apiVersion") != kind.api_version or body.get("kind") != kind.kind:
        raise BadRequest(
            f"the API version and kind in the data ({body.get('apiVersion')}, {body.get('kind')}) do not match "
            f"the expected ({kind.api_version}, {kind.kind})"
        )
    check_metadata_types(body, kind)
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        metadata = body["metadata"] = {}
    if kind.namespaced:
        if metadata.get("namespace") in (None, ""):
            metadata["namespace"] = target.namespace
        elif metadata["namespace"] != target.namespace:
            raise BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
    if target.name is not None and metadata.get("name") != target.name:
        raise BadRequest(
            f"the name of the object ({metadata.get('name') or ''}) does not match the name on the URL "
            f"({target.name})"
        )


@contextmanager
def _warning_with_refusal(warnings: list[str]) -> Iterator[None]:
    """A write refused after its warnings were found is answered with them, as Kubernetes answers: a
    refusal that comes of a dropped unknown field then says which field it was."""
    try:
        yield
    except ApiError as error:
        error.warnings = warnings + error.warnings
        raise


def _item_name(item: dict[str, Any]) -> str:
    """`namespace/name` of an apply's item (its name alone if it has no namespace)."""
    metadata = item.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))


def _prepare_apply_item(item: Any, index: int, default_namespace: str) -> None:
    if not isinstance(item, dict):
        raise BadRequest(f"items[{index}]: must be an object")
    for field, name in (("apiVersion", "apiVersion"), ("kind", "Kind")):
        if not item.get(field):
            raise BadRequest(f"items[{index}]: Object '{name}' is missing")  # the API server's words
    kind = kind_of(item)
    if kind is None:
        raise BadRequest(
            f'items[{index}]: no kind "{item.get("kind")}" is served in version "{item.get("apiVersion")}"'
        )
    metadata = item.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise BadRequest(f"items[{index}]: metadata must be an object")
    if kind.namespaced and not metadata.get("namespace"):
        metadata["namespace"] = default_namespace


def _replace_with(body: dict[str, Any], target: Target) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def replaced(current: dict[str, Any]) -> dict[str, Any]:
        _check_uid_precondition(body, current, target)
        return body

    return replaced


def _check_uid_precondition(body: dict[str, Any], current: dict[str, Any], target: Target) -> None:
    """Kubernetes takes the uid a replace names as a precondition: Conflict if the stored object has
    another (it is not the object the client read)."""
    uid = body["metadata"].get("uid")
    stored = current["metadata"].get("uid")
    if uid not in (None, "") and uid != stored:
        raise precondition_failed(target.kind, target.name or "", "uid", uid, stored)


def _refusing_identity_changes(
    change: Callable[[dict[str, Any]], dict[str, Any]], target: Target
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def patched(current: dict[str, Any]) -> dict[str, Any]:
        result = change(current)
        _check_patched_identity(result, current, target)
        return result

    return patched


def _check_patched_identity(patched: Any, current: dict[str, Any], target: Target) -> None:
    """What Kubernetes refuses in a patched object: a name or namespace other than the URL's (400, as its
    patch handler checks them), a uid other than the stored one (422: the uid is immutable)."""
    if not isinstance(patched, dict):
        return  # the store refuses it
    metadata = patched.get("metadata")
    if metadata is None:
        metadata = {}  # a patch that removed the whole metadata names no object: refused as naming another
    if not isinstance(metadata, dict):
        return  # the store refuses it
    name = metadata.get("name") or ""
    if name != target.name:
        raise BadRequest(
            f"the name of the object ({name}) does not match the name on the URL ({target.name})"
        )
    namespace = metadata.get("namespace") or ""
    if target.namespace and namespace and namespace != target.namespace:
        raise BadRequest(
            f"the namespace of the object ({namespace}) does not match the namespace on the request "
            f"({target.namespace})"
        )
    uid = metadata.get("uid") or ""
    if uid and uid != current["metadata"].get("uid"):
        raise invalid_field(
            f'{target.kind.group_kind} "{target.name}" is invalid',
            "metadata.uid",
            f'Invalid value: "{uid}": field is immutable',
            invalid_details(target.kind, name),
        )


def _json_patched(
    operations: list[dict[str, Any]], options: WriteOptions, kind: Kind, warnings: list[str] | None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The change a JSON patch makes; the undeclared fields it adds go into `warnings` (None: not looked
    for), or refuse it under `fieldValidation=Strict`."""

    def change(current: dict[str, Any]) -> dict[str, Any]:
        result = apply_json_patch(current, operations)
        if warnings is not None and isinstance(result, dict):
            warnings[:] = options.new_unknown_field_warnings(current, result, kind)
        return result

    return change


def _patched_with(patch: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda current: merge_patch(current, patch)


def _resume_point(resource_version: str | None) -> int | None:
    """Where a watch starts: None ("0" or absent) replays the current state first."""
    if resource_version in (None, "", "0"):
        return None
    try:
        return int(resource_version)
    except ValueError:
        raise BadRequest(f'invalid resourceVersion "{resource_version}"') from None


def _timeout(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise BadRequest(f'invalid timeoutSeconds "{value}"') from None
    return seconds if seconds > 0 else None


async def _watch_lines(
    events: AsyncIterator[WatchEvent], matches: Callable[[dict[str, Any]], bool]
) -> AsyncIterator[dict[str, Any]]:
    """Watch events as Kubernetes sends them to a watcher of the objects that `matches` selects (objects
    entering or leaving the selection are ADDED or DELETED); a resume point too old ends with an ERROR
    event."""
    try:
        async for event in events:
            seen = event.seen_through(matches)
            if seen is not None:
                line = seen.to_json()
                line["object"] = shown(line["object"])
                yield line
    except Expired as error:
        yield {"type": "ERROR", "object": error.to_status()}


def open_store(home: Path) -> Store:
    """The store of a modelplane home (created if new), with KServe's admission. Only its owner may
    read it, as it holds the Secrets' values (SQLite gives its journal files the same mode)."""
    home.mkdir(parents=True, exist_ok=True)
    path = store_path(home)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    return Store(path, default_admission())


def bind(host: str = DEFAULT_API_HOST, port: int = DEFAULT_API_PORT) -> socket.socket:
    """A listening socket for the API; port 0 lets the OS choose."""
    return listening_socket(host, port, 128)


class ApiServer(uvicorn.Server):
    """The API for one store on one listening socket: `await server.run()`, `server.stop()`.

    `connections`: connections a restart in place handed over (`handed_over` of the server before),
    served as if accepted here."""

    def __init__(
        self,
        store: Store,
        sock: socket.socket,
        token: str | None = None,
        tls: TLSFiles | None = None,
        connections: list[socket.socket] = (),
    ):
        guard = SameSiteGuard.for_address(sock.getsockname()[0], token_required=token is not None)
        self.app = ApiApp(store, guard, BearerToken(token) if token else None)
        self.tls = tls
        self.sock = sock
        config = uvicorn.Config(
            self.app,
            http=GuardedConnection if tls is None else _tls_or_plain_http(tls.server_context()),
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
        )
        super().__init__(config)
        self._adopted = list(connections)
        self._handing_over = False
        self.handed_over: list[int] = []  # descriptors of the connections a restart in place keeps open

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{'https' if self.tls else 'http'}://{url_host(host)}:{port}"

    async def run(self) -> None:  # type: ignore[override]
        """Serves until `stop()` or a stop signal, then ends open watches and closes."""
        await self.serve(sockets=[self.sock])

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        loop = asyncio.get_running_loop()
        adopted, self._adopted = self._adopted, []
        for sock in adopted:
            try:
                await loop.connect_accepted_socket(self._new_connection, sock)
            except OSError:  # its client left meanwhile
                sock.close()

    def _new_connection(self) -> GuardedConnection:
        return GuardedConnection(
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )

    def stop(self, *, hand_over: bool = False) -> None:
        """Stops serving. With `hand_over`, for a restart in place: for up to `HANDOVER_WINDOW` seconds
        each open connection is handed over (`handed_over`) as soon as it lies between requests, for the
        next program to serve, and new connections wait on the listening socket that program takes over.
        A TLS connection goes on with the session it negotiated, through a relay (tls_handover.py)."""
        self._handing_over = hand_over
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Open watches would otherwise hold the shutdown until their clients leave.
        self.app.end_watches()
        if self._handing_over:
            await self._hand_over_connections()
        await super().shutdown(sockets)

    async def _hand_over_connections(self) -> None:
        for server in self.servers:
            server.close()  # the listening socket's copy kept for the next program takes new clients
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANDOVER_WINDOW
        while True:
            # First a pause: a connection accepted just before the close is not among them yet.
            await asyncio.sleep(HANDOVER_POLL)
            for connection in list(self.server_state.connections):
                connection.hand_over_when_idle(self.handed_over.append)
            if not self.server_state.connections or loop.time() >= deadline:
                break


def _tls_or_plain_http(context: ssl.SSLContext) -> Callable[..., TLSOrPlainHTTP]:
    """uvicorn's `http` protocol for a TLS port: its connections over TLS with `context` (in the time
    uvicorn gives a handshake), a plain HTTP request answered with a 400 that says to use https://."""

    def connection(**state: Any) -> TLSOrPlainHTTP:
        return TLSOrPlainHTTP(
            functools.partial(GuardedConnection, **state),
            context,
            SSL_HANDSHAKE_TIMEOUT,
            _bad_request_status,
            keeps_session=True,  # for a restart in place (tls_handover.py)
        )

    return connection


def _bad_request_status(message: str) -> tuple[bytes, bytes]:
    """The 400 as a Kubernetes Status, whose message kubectl prints (of a text it prints only "the server
    rejected our request for an unknown reason")."""
    return b"application/json", orjson.dumps(BadRequest(message).to_status())


async def serve_api(store: Store, host: str = DEFAULT_API_HOST, port: int = DEFAULT_API_PORT) -> None:
    """Serves the control-plane API for `store` on host:port until the process is told to stop.
    (To learn an OS-chosen port first, or to stop it from code, use `ApiServer(store, bind(...))`.)"""
    await ApiServer(store, bind(host, port)).run()


def main(argv: list[str] | None = None) -> int:
    """Runs the API on its own (for tests and tools): prints `listening on URL` once it is up."""
    parser = argparse.ArgumentParser(prog="python -m modelplane.local.api.server")
    parser.add_argument("--home", type=Path, required=True, help="folder holding the store")
    parser.add_argument("--host", default=DEFAULT_API_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_API_PORT)
    parser.add_argument("--auth-token-file", default=None, help="require Authorization: Bearer <its token>")
    parser.add_argument("--tls-cert", type=Path, default=None, help="serve TLS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, default=None, help="... and this key (PEM)")
    args = parser.parse_args(argv)
    try:
        token = read_token_file(args.auth_token_file) if args.auth_token_file else None
    except TokenFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        store = open_store(args.home)
    except STORE_FAULTS as exc:
        sock.close()
        print(exc, file=sys.stderr)
        return 2
    tls = TLSFiles(args.tls_cert, args.tls_key) if args.tls_cert else None
    server = ApiServer(store, sock, token, tls)
    print(f"listening on {server.url}", flush=True)
    try:
        uvloop.run(server.run())
    except KeyboardInterrupt:  # SIGINT: the server has stopped gracefully and passes the signal on
        return 130
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
