"""How many copies of a ModelMesh model its load needs, and where one more goes (pure).

A model's load is its average concurrency (requests in flight and queued at the gateway) over the
last `LOAD_WINDOW` seconds. It is given one copy per `COPY_TARGET` concurrent requests, up to one on
each ready replica of its pool, and one at least while it is loaded. A copy more goes only where it
fits without unloading another model; copies beyond what the load needs leave once it has stayed
lower for a grace period (`modelplane up --modelmesh-copy-grace-period`, default 60 s), one at a
time, from the fullest replica.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from modelplane.control.placement import ReplicaRoom

COPY_TARGET = 2.0  # concurrent requests one copy is given before the model gets another
LOAD_WINDOW = 6.0  # seconds
SCALE_DOWN_DELAY = 60.0  # seconds


def copies_wanted(concurrency: float, replicas: int, target: float = COPY_TARGET) -> int:
    """The copies a model with this average concurrency needs on a pool of `replicas` ready ones."""
    return max(1, min(replicas, math.ceil(concurrency / target)))


@dataclass
class CopyScaler:
    """One model's load over the window, and since when it has needed fewer copies than it holds."""

    window: float = LOAD_WINDOW
    _samples: deque[tuple[float, float]] = field(default_factory=deque)
    _surplus_since: float | None = None

    def observe(self, taken_at: float, concurrency_seconds: float) -> float | None:
        """Adds a snapshot of the gateway's counters; the average concurrency over the window (None
        until two snapshots lie apart in time)."""
        self._samples.append((taken_at, concurrency_seconds))
        while len(self._samples) > 2 and self._samples[1][0] <= taken_at - self.window:
            self._samples.popleft()
        first_at, first = self._samples[0]
        if taken_at <= first_at:
            return None
        return max(0.0, (concurrency_seconds - first) / (taken_at - first_at))

    def change(
        self,
        concurrency: float,
        copies: int,
        replicas: int,
        now: float,
        grace_period: float = SCALE_DOWN_DELAY,
    ) -> int:
        """+1: add a copy; -1: a copy may leave (the load has needed fewer for `grace_period`
        seconds); 0: as it is."""
        wanted = copies_wanted(concurrency, replicas)
        if wanted > copies:
            self._surplus_since = None
            return 1
        if wanted == copies or copies <= 1:
            self._surplus_since = None
            return 0
        if self._surplus_since is None:
            self._surplus_since = now
        if now - self._surplus_since < grace_period:
            return 0
        self._surplus_since = now  # the next one waits as long again
        return -1


def extra_copy_room(size: int, rooms: Sequence[ReplicaRoom], holders: Collection[str]) -> str | None:
    """The replica (of those not holding the model) with the most room, if the model fits there
    without unloading anything."""
    fitting = [room for room in rooms if room.address not in holders and room.free >= size]
    return max(fitting, key=lambda room: room.free).address if fitting else None


def surplus_copy(rooms: Sequence[ReplicaRoom], holders: Collection[str]) -> str | None:
    """The holder a surplus copy leaves: the one with the least room."""
    holding = [room for room in rooms if room.address in holders]
    return min(holding, key=lambda room: room.free).address if holding else None
