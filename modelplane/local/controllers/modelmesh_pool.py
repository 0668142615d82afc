"""One runtime's pool of replicas for ModelMesh services, and what each replica holds.

The pool's replicas are multi-model `modelplane serve` processes (the runtime's container, rendered as
a multi-model predictor), started and restarted by the supervisor like any revision's. A replica
starts with an empty model folder (`clear_folder`): a restarted one holds nothing, and its models are
loaded again when they are next used. One that a restart of the platform in place takes back keeps
what it holds, and the controller learns that from its repository index. Models are put on a replica and taken off it through its
repository API, by the same code that loads TrainedModels (`modelplane.agent.server_models`).
"""

from __future__ import annotations

import asyncio
import functools
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from modelplane.api.conditions import LOADED
from modelplane.control import Revision, Termination
from modelplane.control.modelmesh import PoolSpec
from modelplane.control.placement import Copy, ReplicaRoom
from modelplane.local.replicas.memory_watch import tree_memory
from modelplane.local.replicas.supervisor import Replica, RevisionReplicas, SupervisorSettings


@dataclass
class HeldCopy:
    """A model on one replica: the spec it was loaded for and the bytes it takes."""

    digest: str
    size: int
    replica: int = 0  # the index of the replica that holds it
    loaded_at: str = ""  # RFC 3339


@dataclass
class Pool:
    spec: PoolSpec
    revision: Revision
    runner: RevisionReplicas
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one load or unload at a time
    held: dict[str, dict[str, HeldCopy]] = field(default_factory=dict)  # address -> model -> copy
    # A load's old versions, unloaded for the new one but with their files kept until it loads.
    set_aside: dict[str, dict[str, HeldCopy]] = field(default_factory=dict)  # address -> model -> copy
    warmed: set[str] = field(default_factory=set)  # the replicas that have loaded a model

    def ready_replicas(self) -> list[Replica]:
        return [r for r in self.runner.replicas if r.phase == LOADED and r.address]

    def replica(self, address: str) -> Replica | None:
        return next((r for r in self.ready_replicas() if r.address == address), None)

    def forget_gone_replicas(self) -> dict[str, tuple[HeldCopy, Termination]]:
        """Drops what replicas that are no longer ready held (a restarted one starts empty); returns the
        copies lost because their replica's process exited, by model, with how it ended."""
        ready = {r.address for r in self.ready_replicas()}
        ends = {r.index: r.last_termination for r in self.runner.replicas if r.last_termination}
        exited: dict[str, tuple[HeldCopy, Termination]] = {}
        for address in set(self.held) - ready:
            for model, copy in self.held.pop(address).items():
                ended = ends.get(copy.replica)
                if ended is not None and ended.finished_at >= copy.loaded_at:
                    exited[model] = (copy, ended)
        self.warmed &= ready
        return exited

    def rooms(self, last_used: dict[str, float]) -> list[ReplicaRoom]:
        """Each ready replica's capacity and copies, for the placement."""
        return [
            ReplicaRoom(
                replica.address,
                self.spec.capacity,
                tuple(
                    Copy(model, copy.size, last_used.get(model, 0.0))
                    for model, copy in self.held.get(replica.address, {}).items()
                ),
            )
            for replica in self.ready_replicas()
        ]

    def holders(self, model: str, digest: str | None = None) -> list[Replica]:
        """The ready replicas holding `model` (for that spec, when `digest` is given)."""
        return [
            replica
            for replica in self.ready_replicas()
            if model in self.held.get(replica.address, {})
            and (digest is None or self.held[replica.address][model].digest == digest)
        ]

    def location(self, replica: Replica) -> str:
        """A replica's name, where a pod's would be."""
        return f"{self.revision.name}-{replica.index}"


def pool_settings(settings: SupervisorSettings) -> SupervisorSettings:
    """The supervisor's settings for pool replicas: each starts with an empty model folder."""
    return replace(settings, prepare_repository=clear_folder)


async def clear_folder(replica: Replica) -> None:
    folder = replica.model_repository
    if folder is None:
        return
    await asyncio.to_thread(functools.partial(_empty, folder))


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def folder_size(folder: Path) -> int:
    """The bytes of a model's files (a linked folder's files are counted where they are)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def replica_memory(replica: Replica) -> int | None:
    """What a replica's processes hold now, from /proc (None where it cannot be measured)."""
    pid = replica.pid
    return tree_memory(pid) if pid is not None else None


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=600.0))
