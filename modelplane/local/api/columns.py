"""The table columns of each kind, as `kubectl get` shows them: the CRDs' printer columns.

Each CRD in `modelplane.api` names its columns with a JSONPath (`.status.url`,
`.status.conditions[?(@.type=='Ready')].status`, `.spec.containers[*].name`), which
`modelplane.api.jsonpath` evaluates; this module formats cells as kubectl does (dates as ages
such as `7d23h`, several values joined by commas, a missing value as an empty cell). An Event's
columns are Kubernetes' own event printer's, computed here: no NAME first (`-o wide` shows it last),
`OBJECT` as `kind/name`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson

from modelplane.api import jsonpath
from modelplane.api.kinds import EVENT, Kind
from modelplane.api.schema import crd


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: str
    priority: int = 0
    counted: tuple[str, ...] = ()  # a count column: the entries of these fields, added up
    computed: Callable[[dict[str, Any], datetime | None], Any] | None = None  # a cell no JSONPath reaches
    description: str = ""
    format: str = ""

    @property
    def header(self) -> str:
        return self.name.upper()

    def value(self, resource: dict[str, Any], now: datetime | None = None) -> Any:
        """The cell as a server-side Table carries it: None where the path reaches nothing, the
        number or boolean itself for a column of that type, an age for a date, otherwise text
        (several values joined by commas)."""
        if self.computed is not None:
            return self.computed(resource, now)
        if self.counted:
            return sum(len(value) for field in self.counted for value in evaluate(field, resource))
        values = evaluate(self.json_path, resource)
        if not values:
            return None
        if self.type == "date":
            return age(values[0], now)
        if len(values) == 1 and _is_of_type(values[0], self.type):
            return values[0]
        return ",".join(_text(v) for v in values)

    def cell(self, resource: dict[str, Any], now: datetime | None = None) -> str:
        """The cell as kubectl prints it."""
        value = self.value(resource, now)
        return "" if value is None else _text(value)


# modelplane's own wide columns: the replicas of each running revision (`status.revisions`).
_REPLICA_COLUMNS = (
    Column("Revisions", ".status.revisions[*].name", "string", priority=1),
    Column("Replicas", ".status.revisions[*].actualReplicas", "string", priority=1),
    Column("Desired", ".status.revisions[*].desiredReplicas", "string", priority=1),
)


# The counts Kubernetes shows for its own kinds, before their age.
_COUNT_COLUMNS = {
    "ConfigMap": Column("Data", "", "integer", counted=(".data", ".binaryData")),
    "Secret": Column("Data", "", "integer", counted=(".data",)),
    "ServiceAccount": Column("Secrets", "", "integer", counted=(".secrets",)),
}


def _event_target(event: dict[str, Any], _now: datetime | None) -> str:
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    return f"{kind}/{involved['name']}" if involved.get("name") else kind


def _event_first_seen(event: dict[str, Any], now: datetime | None) -> str:
    return _age_or_unknown(event.get("firstTimestamp") or event.get("eventTime"), now)


def _event_last_seen(event: dict[str, Any], now: datetime | None) -> str:
    series = event.get("series") or {}
    if series.get("lastObservedTime"):
        return _age_or_unknown(series["lastObservedTime"], now)
    if event.get("lastTimestamp"):
        return _age_or_unknown(event["lastTimestamp"], now)
    return _event_first_seen(event, now)


def _event_source(event: dict[str, Any], _now: datetime | None) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def _event_count(event: dict[str, Any], _now: datetime | None) -> int:
    series = event.get("series") or {}
    return int(series.get("count") or event.get("count") or 1)


def _event_message(event: dict[str, Any], _now: datetime | None) -> str:
    return str(event.get("message") or "").strip()


def _age_or_unknown(timestamp: Any, now: datetime | None) -> str:
    return age(timestamp, now) if timestamp else "<unknown>"


def _text_at(json_path: str) -> Callable[[dict[str, Any], datetime | None], str]:
    """A cell of a Go string field: empty where the object has none (kubectl would print a null `<none>`)."""

    def text(event: dict[str, Any], _now: datetime | None) -> str:
        values = evaluate(json_path, event)
        return _text(values[0]) if values else ""

    return text


def _event_column(
    name: str, cell: Callable[[dict[str, Any], datetime | None], Any], description: str, priority: int = 0
) -> Column:
    column_type = "integer" if name == "Count" else "string"
    return Column(
        name,
        "",
        column_type,
        priority,
        computed=cell,
        description=description,
        format="name" if name == "Name" else "",
    )


# Kubernetes' event printer (pkg/printers/internalversion): every cell a string but the count.
_EVENT_COLUMNS = (
    _event_column("Last Seen", _event_last_seen, "The time the event was last seen."),
    _event_column("Type", _text_at(".type"), "Type of this event (Normal, Warning)."),
    _event_column("Reason", _text_at(".reason"), "Why the action was taken."),
    _event_column("Object", _event_target, "The object this event is about."),
    _event_column("Subobject", _text_at(".involvedObject.fieldPath"), "The part of the object.", priority=1),
    _event_column("Source", _event_source, "Who reported the event.", priority=1),
    _event_column("Message", _event_message, "What happened."),
    _event_column("First Seen", _event_first_seen, "The time the event was first seen.", priority=1),
    _event_column("Count", _event_count, "How often it happened.", priority=1),
    _event_column("Name", _text_at(".metadata.name"), "The event's name.", priority=1),
)


def leads_with_name(kind: Kind) -> bool:
    """Whether a table of the kind starts with NAME: every kind's but the Event's, which shows it last,
    with `-o wide`."""
    return kind != EVENT


@cache
def printer_columns(kind: Kind) -> tuple[Column, ...]:
    """The kind's columns after NAME (kubectl's wide output adds those with a priority); an Event's
    are all of its columns (`leads_with_name`)."""
    if kind == EVENT:
        return _EVENT_COLUMNS
    extra = _REPLICA_COLUMNS if kind.kind == "InferenceService" else ()
    for version in crd(kind)["spec"]["versions"]:
        if version["name"] == kind.version:
            columns = [
                Column(c["name"], c["jsonPath"], c.get("type", "string"), c.get("priority", 0))
                for c in version.get("additionalPrinterColumns", [])
            ]
            if kind.kind in _COUNT_COLUMNS:
                columns.insert(len(columns) - 1, _COUNT_COLUMNS[kind.kind])  # before Age
            return (*columns, *extra)
    return extra


def evaluate(json_path: str, resource: Any) -> list[Any]:
    """Every value `json_path` reaches in `resource` (kubectl's JSONPath)."""
    return jsonpath.evaluate(_steps(json_path), resource)


@cache
def _steps(json_path: str) -> list:
    return jsonpath.parse_path(json_path)


def age(timestamp: str, now: datetime | None = None) -> str:
    """How long ago an RFC 3339 timestamp was, as kubectl prints it (`45s`, `3m2s`, `7d23h`)."""
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return "<invalid>"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    return human_duration(seconds)


def human_duration(seconds: int) -> str:
    """Kubernetes' `duration.HumanDuration`: two units at most, coarser as time goes by."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y{rest}d" if rest else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _is_of_type(value: Any, column_type: str) -> bool:
    if isinstance(value, bool):
        return column_type == "boolean"
    if isinstance(value, int):
        return column_type in ("integer", "number")
    return isinstance(value, float) and column_type == "number"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)
