"""The objects of the test API server, in memory, with the metadata Kubernetes manages, a bounded
history of changes for watches, finalizers and the garbage collector.

Everything runs on the server's one event loop, so a request's read-check-write is atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from . import fields
from .kinds import ApiKind

HISTORY = 1000  # changes kept for watches to resume from


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def not_found(kind: ApiKind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.plural}.{kind.group or "core"} "{name}" not found')


def conflict(kind: ApiKind, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.plural}.{kind.group or "core"} "{name}": {why}',
    )


@dataclass(frozen=True)
class Event:
    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    kind: ApiKind
    obj: dict


Key = tuple[ApiKind, str, str]  # kind, namespace ("" for cluster-scoped), name


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self) -> None:
        self.objects: dict[Key, dict] = {}
        self.revision = 0
        self.history: deque[Event] = deque(maxlen=HISTORY)
        self.watchers: set[asyncio.Queue] = set()
        self._dry_run = False

    @contextlib.contextmanager
    def dry_run(self) -> Iterator[None]:
        """Writes inside compute their result and keep nothing (what a webhook is asked about)."""
        self._dry_run = True
        try:
            yield
        finally:
            self._dry_run = False

    # ---- reads ----

    def get(self, kind: ApiKind, namespace: str, name: str) -> dict:
        found = self.objects.get((kind, namespace, name))
        if found is None:
            raise not_found(kind, name)
        return copy.deepcopy(found)

    def list(self, kind: ApiKind, namespace: str | None) -> list[dict]:
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items(), key=lambda item: item[0][1:])
            if k == kind and (namespace is None or ns == namespace)
        ]

    def events_since(self, resource_version: int) -> list[Event] | None:
        """The changes after `resource_version`, or None when the history no longer reaches back there."""
        if self.history and self.history[0].resource_version > resource_version + 1:
            return None
        if not self.history and resource_version < self.revision:
            return None
        return [e for e in self.history if e.resource_version > resource_version]

    # ---- writes ----

    def create(self, kind: ApiKind, namespace: str, obj: dict, manager: str) -> dict:
        metadata = obj.setdefault("metadata", {})
        name = metadata.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{kind.kind} is invalid: metadata.name: Required value")
        if (kind, namespace, name) in self.objects:
            raise ApiError(
                409, "AlreadyExists", f'{kind.plural}.{kind.group or "core"} "{name}" already exists'
            )
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        obj.pop("status", None)  # written through the status subresource, as kubelet and controllers do
        if kind.namespaced:
            metadata["namespace"] = namespace
        metadata.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        for key in ("resourceVersion", "deletionTimestamp", "managedFields"):
            metadata.pop(key, None)
        fields.record_update(None, obj, manager)
        return self._write("ADDED", kind, namespace, obj)

    def update(self, kind: ApiKind, namespace: str, obj: dict, manager: str, *, status: bool) -> dict:
        """A PUT: of the object (its status is kept) or of its status (everything else is kept)."""
        name = (obj.get("metadata") or {}).get("name")
        current = self.get(kind, namespace, name)
        wanted_version = (obj.get("metadata") or {}).get("resourceVersion")
        if wanted_version and wanted_version != current["metadata"]["resourceVersion"]:
            raise conflict(
                kind,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if status:
            new = copy.deepcopy(current)
            new["status"] = obj.get("status")
        else:
            new = copy.deepcopy(obj)
            new["apiVersion"], new["kind"] = kind.api_version, kind.kind
            if "status" in current:
                new["status"] = current["status"]
            else:
                new.pop("status", None)
            for key in (
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "managedFields",
                "namespace",
            ):
                if key in current["metadata"]:
                    new["metadata"][key] = current["metadata"][key]
                else:
                    new["metadata"].pop(key, None)
            fields.record_update(current, new, manager)
        return self._replace(kind, namespace, current, new)

    def apply(
        self, kind: ApiKind, namespace: str, name: str, config: dict, manager: str, force: bool
    ) -> dict:
        """Server-side apply: creates the object, or merges `config` into it (fields.apply)."""
        config = copy.deepcopy(config)
        config.setdefault("metadata", {})["name"] = name
        current = self.objects.get((kind, namespace, name))
        if current is None:
            metadata = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": now(), "generation": 1}
            if kind.namespaced:
                metadata["namespace"] = namespace
            base = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata}
            return self._write("ADDED", kind, namespace, fields.apply(base, config, manager, force))
        current = copy.deepcopy(current)
        try:
            new = fields.apply(current, config, manager, force)
        except fields.ApplyConflict as exc:
            raise ApiError(409, "Conflict", str(exc)) from None
        return self._replace(kind, namespace, current, new)

    def merge_patch(
        self, kind: ApiKind, namespace: str, name: str, patch: dict, manager: str, *, status: bool
    ) -> dict:
        """A JSON merge patch (RFC 7386) of the object, or of its status only."""
        current = self.get(kind, namespace, name)
        wanted_version = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted_version and wanted_version != current["metadata"]["resourceVersion"]:
            raise conflict(
                kind,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if status:
            new = copy.deepcopy(current)
            new["status"] = _merged(current.get("status"), patch.get("status"))
        else:
            new = _merged(current, {k: v for k, v in patch.items() if k != "status"})
            new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            fields.record_update(current, new, manager)
        return self._replace(kind, namespace, current, new)

    def delete(self, kind: ApiKind, namespace: str, name: str, *, orphan: bool = False) -> dict:
        current = self.get(kind, namespace, name)
        metadata = current["metadata"]
        if metadata.get("finalizers"):
            if metadata.get("deletionTimestamp"):
                return current
            new = copy.deepcopy(current)
            new["metadata"]["deletionTimestamp"] = now()
            return self._write("MODIFIED", kind, namespace, new)
        return self._remove(kind, namespace, current, orphan=orphan)

    # ---- inside ----

    def _replace(self, kind: ApiKind, namespace: str, current: dict, new: dict) -> dict:
        metadata = new["metadata"]
        metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        if _spec_of(new) != _spec_of(current):
            metadata["generation"] = current["metadata"].get("generation", 1) + 1
        if metadata.get("deletionTimestamp") and not metadata.get("finalizers"):
            return self._remove(kind, namespace, new)
        if new == current:
            return current
        return self._write("MODIFIED", kind, namespace, new)

    def _write(self, type_: str, kind: ApiKind, namespace: str, obj: dict) -> dict:
        if self._dry_run:
            return obj
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        self.objects[(kind, namespace, obj["metadata"]["name"])] = copy.deepcopy(obj)
        self._publish(Event(self.revision, type_, kind, copy.deepcopy(obj)))
        return obj

    def _remove(self, kind: ApiKind, namespace: str, obj: dict, *, orphan: bool = False) -> dict:
        if self._dry_run:
            return obj
        del self.objects[(kind, namespace, obj["metadata"]["name"])]
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        self._publish(Event(self.revision, "DELETED", kind, copy.deepcopy(obj)))
        if not orphan:
            self._collect(obj["metadata"]["uid"])
        return obj

    def _collect(self, owner_uid: str) -> None:
        """The garbage collector: every dependent of a deleted owner is deleted (in the background, as
        `propagationPolicy: Background`), honouring its own finalizers."""
        for (kind, namespace, name), obj in list(self.objects.items()):
            references = (obj.get("metadata") or {}).get("ownerReferences") or []
            if (
                any(ref.get("uid") == owner_uid for ref in references)
                and (kind, namespace, name) in self.objects
            ):
                self.delete(kind, namespace, name)

    def _publish(self, event: Event) -> None:
        self.history.append(event)
        for queue in self.watchers:
            queue.put_nowait(event)


def _merged(target: object, patch: object) -> object:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merged(result.get(key), value)
    return result


def _spec_of(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def matches(obj: dict, selector: list[tuple[str, str, tuple[str, ...]]]) -> bool:
    """Whether `obj`'s labels satisfy a parsed label selector."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, op, values in selector:
        if op == "=" and labels.get(key) != values[0]:
            return False
        if op == "!=" and labels.get(key) == values[0]:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
        if op == "in" and labels.get(key) not in values:
            return False
        if op == "notin" and labels.get(key) in values:
            return False
    return True


def parse_selector(text: str | None) -> list[tuple[str, str, tuple[str, ...]]]:
    if not text:
        return []
    parsed = []
    for term in _terms(text):
        term = term.strip()
        if " in " in term or " notin " in term:
            key, op, rest = term.partition(" notin " if " notin " in term else " in ")
            values = tuple(v.strip() for v in rest.strip().strip("()").split(","))
            parsed.append((key.strip(), op.strip(), values))
        elif "!=" in term:
            key, _, value = term.partition("!=")
            parsed.append((key.strip(), "!=", (value.strip(),)))
        elif "=" in term:
            key, _, value = term.partition("=")
            parsed.append((key.strip(), "=", (value.strip().lstrip("="),)))
        elif term.startswith("!"):
            parsed.append((term[1:], "!exists", ()))
        else:
            parsed.append((term, "exists", ()))
    return parsed


def _terms(text: str) -> Iterator[str]:
    depth, start = 0, 0
    for i, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            yield text[start:i]
            start = i + 1
    yield text[start:]
