"""Replicas that go on running while `modelplane up` restarts in place (SIGHUP: the platform `exec`s
itself, keeping its process id, so its replicas stay its children).

The old program hands each running replica over as a `HandedReplica`: its process, its ports and
the template it was started from. The new one gives each back to the `Replica` of the same name and
template as that replica starts, instead of starting a process; what no replica takes back within
`UNCLAIMED_AFTER` is stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Protocol

UNCLAIMED_AFTER = 60.0  # seconds after the restart that a replica handed over is kept for its revision


def template_digest(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class HandedReplica:
    name: str  # `<revision>-<index>`, as `Replica.name`
    template: str  # `template_digest` of what it was started from
    pid: int
    forked: bool  # by a zygote (else a child of the platform itself)
    http_port: int
    grpc_port: int
    gpus: tuple[str, ...] = ()
    loaded: bool = False  # it answered its readiness probe when it was handed over
    # Its batcher sidecar (replicas/batcher_sidecar.py), handed over with it: the gateway's routes name it.
    batcher_pid: int | None = None
    batcher_port: int | None = None
    batcher_metrics_port: int | None = None  # where it serves its metrics, in a service that is scraped

    @classmethod
    def from_json(cls, data: dict) -> HandedReplica:
        return cls(**{**data, "gpus": tuple(data.get("gpus", ()))})

    def to_json(self) -> dict:
        return asdict(self)


class HandsOver(Protocol):
    """A replica that can let go of its process (`supervisor.Replica`)."""

    def hand_over(self) -> HandedReplica | None: ...


@dataclass
class ReplicaHandover:
    """The running replicas of this program (`live`), and those the previous one handed over."""

    live: set[HandsOver] = field(default_factory=set)
    inherited: dict[str, HandedReplica] = field(default_factory=dict)
    # The revisions the previous program had scaled to zero on their requests: they start there.
    at_zero: set[str] = field(default_factory=set)

    def take(self, name: str, template: dict) -> HandedReplica | None:
        """The replica handed over under this name, if it was started from this template."""
        handed = self.inherited.get(name)
        if handed is None or handed.template != template_digest(template):
            return None
        return self.inherited.pop(name)

    def count(self, revision: str) -> int:
        """How many replicas of a revision were handed over and not yet taken back."""
        prefix = f"{revision}-"
        return sum(1 for name in self.inherited if name.startswith(prefix) and name[len(prefix) :].isdigit())

    def unclaimed(self) -> list[HandedReplica]:
        left, self.inherited = list(self.inherited.values()), {}
        return left
