"""Live state of each revision behind the gateway: its replicas, the requests in flight, the queue.

A request takes a slot on one replica before it is forwarded and gives it back when its response
ends. When no replica has a free slot (all are at `container_concurrency`, or the revision is scaled
to zero) the request waits in a bounded FIFO queue until a slot frees up or replicas appear.
Everything here runs on the gateway's event loop; the counters are plain integers so the autoscaler
can read them cheaply from another thread.

What the autoscaler reads as load (`concurrency_seconds`) counts each request in flight for at most the
revision's timeout: a request held open longer (a stream nobody reads, a body that never ends) stops
counting then, so held requests cannot scale a revision up for longer than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelplane.local.gateway.routes import split_address

logger = logging.getLogger(__name__)

UNREACHABLE_PAUSE = 0.5  # seconds a replica that refused a connection is passed over
# A request tries this many connections (waiting for a reachable replica between them) before failing.
MAX_CONNECT_ATTEMPTS = 10


class Unavailable(Exception):
    """The gateway cannot serve the request now; `status` and `message` go back to the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WaitTimedOut(Unavailable):
    """No slot came up within the wait's limit; `why` says what the revision's replicas were doing."""

    def __init__(self, revision: str, timeout: float, why: str) -> None:
        super().__init__(503, f"revision {revision} could not take the request within {timeout:g}s: {why}")
        self.revision = revision
        self.why = why


class Rerouted(Unavailable):
    """The revision left the route table while the request waited for it (a rollout's last step): the
    request may go where its host routes now (`acquire_rerouting`)."""


MAX_REROUTES = 3


@dataclass(frozen=True)
class RevisionStats:
    """A snapshot of one revision's counters, for the autoscaler.

    `concurrency_seconds` is the integral of `in_flight` over time, each request counting for at most
    the revision's timeout: the average concurrency over a window is the difference of two snapshots
    divided by the difference of their `taken_at`.
    """

    revision: str
    replicas: int
    in_flight: int
    queued: int
    requests_total: int
    concurrency_seconds: float
    taken_at: float
    last_request_at: float = 0.0  # when the last request for it arrived (0: none yet); monotonic
    # The addresses of its replicas with requests in flight, those that left the routes included: the
    # platform stops a replica scaled away once it is not among them.
    busy_replicas: frozenset[str] = frozenset()


class UpstreamReplica:
    """One replica address and the requests the gateway has in flight on it (REST and gRPC alike).

    `grpc_address` is where the replica serves gRPC, if it does.
    """

    __slots__ = ("address", "host", "port", "in_flight", "grpc_address", "unreachable_until")

    def __init__(self, address: str, grpc_address: str | None = None) -> None:
        self.address = address
        self.host, self.port = split_address(address)
        self.in_flight = 0
        self.grpc_address = grpc_address
        self.unreachable_until = 0.0  # the loop's clock: refused a connection, set aside until then


class LoadMeter:
    """The time integral of the requests in flight, each counting for at most `bound` seconds.

    `begin()` gives the time a request started counting, which it hands back to `end()`.
    """

    def __init__(self, bound: float) -> None:
        self.bound = bound
        self._open: dict[float, int] = {}  # start times of the requests in flight (how many at each)
        self._closed = 0.0  # what the requests that ended contributed

    def begin(self) -> float:
        since = time.monotonic()
        self._open[since] = self._open.get(since, 0) + 1
        return since

    def end(self, since: float) -> None:
        left = self._open.pop(since, 0) - 1
        if left > 0:
            self._open[since] = left
        self._closed += min(time.monotonic() - since, self.bound)

    def seconds(self, now: float) -> float:
        bound = self.bound
        return self._closed + sum(min(now - since, bound) * count for since, count in self._open.items())


class RevisionUpstreams:
    """Replicas, slots and waiting requests of one revision.

    `default_timeout` bounds how long a request counts as load when the revision sets no timeout.
    """

    def __init__(
        self, revision: str, on_demand: Callable[[str], None] | None = None, default_timeout: float = 300.0
    ) -> None:
        self.revision = revision
        self.container_concurrency = 0
        self.timeout_seconds: float | None = None
        self.load = LoadMeter(default_timeout)
        self._default_timeout = default_timeout
        self.serves_grpc = False
        self.replicas: list[UpstreamReplica] = []
        self.in_flight = 0
        self.requests_total = 0
        self.last_request_at = 0.0
        # For the metrics: requests that waited for a slot, that waited in vain, that found the queue
        # full, and connections its replicas refused.
        self.waits = 0
        self.wait_timeouts = 0
        self.overflows = 0
        self.connect_refusals = 0
        self._waiters: deque[asyncio.Future[UpstreamReplica]] = deque()
        self._on_demand = on_demand
        self._next = 0
        self._retired: Rerouted | None = None  # it left the route table: where it was sent goes on
        self._leaving: list[UpstreamReplica] = []  # out of the routes, with requests still in flight

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def replica_count(self) -> int:
        return len(self.replicas)

    def update(
        self,
        addresses: Sequence[str],
        container_concurrency: int,
        timeout_seconds: float | None,
        grpc_addresses: Sequence[str] | None = None,
    ) -> None:
        """Takes the replica list from a new route table, keeping the counts of known replicas.

        `grpc_addresses`, when given, are the replicas' gRPC addresses in the order of `addresses`.
        """
        known = {replica.address: replica for replica in (*self._leaving, *self.replicas)}
        grpc = dict(zip(addresses, grpc_addresses, strict=True)) if grpc_addresses is not None else {}
        self._set_replicas(
            [known.get(address) or UpstreamReplica(address) for address in dict.fromkeys(addresses)]
        )
        for replica in self.replicas:
            replica.grpc_address = grpc.get(replica.address)
        self.serves_grpc = grpc_addresses is not None
        self.container_concurrency = container_concurrency
        self.timeout_seconds = timeout_seconds
        self.load.bound = timeout_seconds or self._default_timeout
        self._retired = None  # back in the table (it was draining)
        self._hand_out()

    def retire(self, reason: str, *, rerouted: bool = False) -> None:
        """The revision left the route table (`rerouted`: its hosts route elsewhere now), or its route
        refuses: the requests still waiting for it fail with the reason, or are `Rerouted`."""
        self._set_replicas([])
        self._retired = Rerouted(503, reason) if rerouted else None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(self._retired or Unavailable(503, reason))

    def _set_replicas(self, replicas: list[UpstreamReplica]) -> None:
        """The replicas to send requests to; those left out that hold requests are kept as leaving."""
        self._leaving = [
            replica
            for replica in (*self._leaving, *self.replicas)
            if replica.in_flight and replica not in replicas
        ]
        self.replicas = replicas

    def try_acquire(self) -> UpstreamReplica | None:
        """A free slot now, or None when the request has to wait (behind others, or for room)."""
        if self._waiters:
            return None
        replica = self._pick()
        if replica is not None:
            self._take(replica)
        return replica

    async def acquire(self, timeout: float, max_queued: int) -> UpstreamReplica:
        """A replica with a free slot, waiting up to `timeout` seconds for one."""
        if self._retired is not None:
            raise self._retired
        replica = None if self._waiters else self._pick()
        if replica is not None:
            self._take(replica)
            return replica
        if len(self._waiters) >= max_queued:
            self.overflows += 1
            raise Unavailable(
                503, f"revision {self.revision} is overloaded: {len(self._waiters)} requests already wait"
            )
        if not self.replicas:
            self._ask_for_replica()
            # The callback may have brought replicas at once (an autoscaler on this loop).
            replica = None if self._waiters else self._pick()
            if replica is not None:
                self._take(replica)
                return replica
        self.waits += 1
        return await self._wait(timeout)

    def set_aside(self, replica: UpstreamReplica) -> None:
        """A replica refused a connection (it crashed, or stops): no request goes to it for a moment.
        Requests wait for another replica meanwhile, or for the route table to bring a restarted one,
        instead of failing; the supervisor notices the crash and the routes follow within moments."""
        self.connect_refusals += 1
        loop = asyncio.get_running_loop()
        # The loop's clock, as the timer's: when the timer fires, the replica is due back.
        replica.unreachable_until = loop.time() + UNREACHABLE_PAUSE
        loop.call_later(UNREACHABLE_PAUSE, self._hand_out)

    def release(self, replica: UpstreamReplica) -> None:
        """Gives a slot back; the first waiting request takes it."""
        self.in_flight -= 1
        replica.in_flight -= 1
        self._hand_out()

    def count_request(self) -> None:
        """A request arrived for the revision (it may wait for a replica)."""
        self.requests_total += 1
        self.last_request_at = time.monotonic()

    def stats(self) -> RevisionStats:
        now = time.monotonic()
        return RevisionStats(
            revision=self.revision,
            replicas=len(self.replicas),
            in_flight=self.in_flight,
            queued=len(self._waiters),
            requests_total=self.requests_total,
            concurrency_seconds=self.load.seconds(now),
            taken_at=now,
            last_request_at=self.last_request_at,
            busy_replicas=frozenset(
                replica.address for replica in (*self.replicas, *self._leaving) if replica.in_flight
            ),
        )

    def _ask_for_replica(self) -> None:
        if self._on_demand is None:
            return
        try:
            self._on_demand(self.revision)
        except Exception:  # the autoscaler's problem; the request still waits for a replica
            logger.exception("gateway: the scale-from-zero callback failed for revision %s", self.revision)

    async def _wait(self, timeout: float) -> UpstreamReplica:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[UpstreamReplica] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(timeout, self._expire, waiter, timeout)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())
            raise
        finally:
            timer.cancel()
            if not waiter.done() or waiter.cancelled():
                self._discard(waiter)

    def _expire(self, waiter: asyncio.Future[UpstreamReplica], timeout: float) -> None:
        if waiter.done():
            return
        self._discard(waiter)
        self.wait_timeouts += 1
        now = asyncio.get_running_loop().time()
        if self.replicas and all(self._unreachable(r, now) for r in self.replicas):
            why = "its replicas refused connections"
        elif self.replicas:
            why = f"all its replicas stayed at their concurrency limit ({self.container_concurrency})"
        else:
            why = "no replica became ready"
        waiter.set_exception(WaitTimedOut(self.revision, timeout, why))

    def _discard(self, waiter: asyncio.Future[UpstreamReplica]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _hand_out(self) -> None:
        while self._waiters:
            replica = self._pick()
            if replica is None:
                return
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take(replica)
                waiter.set_result(replica)

    def _pick(self) -> UpstreamReplica | None:
        """The least busy replica with a free slot, starting the scan round-robin to spread ties."""
        replicas = self.replicas
        count = len(replicas)
        if not count:
            return None
        limit = self.container_concurrency
        start = self._next % count
        self._next = start + 1
        best = None
        now = 0.0
        for offset in range(count):
            replica = replicas[(start + offset) % count]
            if limit and replica.in_flight >= limit:
                continue
            if replica.unreachable_until:
                now = now or asyncio.get_running_loop().time()
                if self._unreachable(replica, now):
                    continue
            if best is None or replica.in_flight < best.in_flight:
                best = replica
                if not replica.in_flight:
                    break
        return best

    @staticmethod
    def _unreachable(replica: UpstreamReplica, now: float) -> bool:
        if replica.unreachable_until > now:
            return True
        replica.unreachable_until = 0.0
        return False

    def _take(self, replica: UpstreamReplica) -> None:
        replica.in_flight += 1
        self.in_flight += 1


async def acquire_rerouting(
    revision: RevisionUpstreams,
    reroute: Callable[[], RevisionUpstreams],
    queue_timeout: float,
    max_queued: int,
    time_left: float,
    request_timeout: float,
) -> tuple[RevisionUpstreams, UpstreamReplica]:
    """A slot on one of the revision's replicas, waiting at most `queue_timeout`, and at most
    `time_left` of the request's own `request_timeout` (its revision's): a component's timeout counts
    from the request's arrival, the wait for a replica and a slot included, as Knative's activator and
    queue-proxy count it; past it, 504. Where the revision leaves the route table while the request
    waits for it (the last step of a rollout, a canary let go), `reroute()` gives the revision its host
    routes to now, and the request waits for that one (a host that no longer routes at all fails the
    request with why its revision left)."""
    wait = max(0.0, min(queue_timeout, time_left))
    try:
        return await _acquire_rerouting(revision, reroute, wait, max_queued)
    except WaitTimedOut as late:
        if time_left >= queue_timeout:
            raise
        raise Unavailable(
            504, f"revision {late.revision} did not start responding within {request_timeout:g}s: {late.why}"
        ) from None


async def _acquire_rerouting(
    revision: RevisionUpstreams,
    reroute: Callable[[], RevisionUpstreams],
    timeout: float,
    max_queued: int,
) -> tuple[RevisionUpstreams, UpstreamReplica]:
    for _ in range(MAX_REROUTES):
        try:
            return revision, await revision.acquire(timeout, max_queued)
        except Rerouted as moved:
            try:
                revision = reroute()
            except Unavailable:  # the host itself is gone: why its revision left says more
                raise moved from None
    return revision, await revision.acquire(timeout, max_queued)
