"""Where a model's copy goes in a pool, and which copies make room for it (pure).

Each replica keeps `capacity` bytes for models. A model goes to the replica with the most room left
when one has room for it; otherwise room is made by unloading the least recently used copies: of the
replicas where unloading copies (oldest first) makes room, the one whose most recently used evicted
copy is the oldest, so that what goes is what the whole pool used least lately. Copies in use (being
loaded, or otherwise pinned) are never evicted. A model bigger than every replica's capacity fits
nowhere.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Copy:
    model: str
    size: int  # bytes
    last_used: float  # when a request last reached it (any clock, compared with itself only)


@dataclass(frozen=True)
class ReplicaRoom:
    address: str
    capacity: int
    copies: tuple[Copy, ...] = ()

    @property
    def free(self) -> int:
        return self.capacity - sum(copy.size for copy in self.copies)


@dataclass(frozen=True)
class Placement:
    replica: str
    evict: tuple[str, ...] = ()  # the models whose copies on that replica are unloaded first


class DoesNotFit(Exception):
    """No replica can hold the model (it is bigger than each one, or what is there cannot go)."""


def place(size: int, replicas: Sequence[ReplicaRoom], pinned: Collection[str] = ()) -> Placement:
    """Where a model of `size` bytes goes, and what is unloaded there first."""
    if not replicas:
        raise DoesNotFit("no replica of the pool is ready")
    largest = max(replica.capacity for replica in replicas)
    if size > largest:
        raise DoesNotFit(
            f"the model needs {_mib(size)}, more than a replica of its runtime keeps for models ({_mib(largest)})"
        )
    with_room = [replica for replica in replicas if replica.free >= size]
    if with_room:
        return Placement(max(with_room, key=lambda replica: replica.free).address)
    options = []
    for replica in replicas:
        evict = _evictions(replica, size, pinned)
        if evict is not None:
            newest_lost = max((copy.last_used for copy in evict), default=float("-inf"))
            options.append((newest_lost, len(evict), replica.address, evict))
    if not options:
        raise DoesNotFit("every replica's memory is held by models in use")
    _, _, address, evict = min(options, key=lambda option: option[:3])
    return Placement(address, tuple(copy.model for copy in evict))


def over_capacity(replica: ReplicaRoom, keep: Collection[str] = ()) -> tuple[str, ...]:
    """The least recently used copies to unload so that a replica holds no more than its capacity
    (after a copy turned out bigger than its estimate); the copies in `keep` stay."""
    evict = _evictions(replica, 0, keep)
    return tuple(copy.model for copy in evict) if evict else ()


def _evictions(replica: ReplicaRoom, size: int, pinned: Collection[str]) -> list[Copy] | None:
    """The oldest copies whose going leaves `size` bytes free; None if unloading all that may go is
    not enough."""
    free = replica.free
    evict: list[Copy] = []
    for copy in sorted(replica.copies, key=lambda copy: copy.last_used):
        if free >= size:
            break
        if copy.model in pinned:
            continue
        evict.append(copy)
        free += copy.size
    return evict if free >= size else None


def _mib(size: int) -> str:
    return f"{size / 1024**2:.1f}Mi"
