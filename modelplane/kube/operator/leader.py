"""Leader election by a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Every replica runs `LeaderElector.run`. The one that holds the Lease renews it every `retry_period`;
the others try as often, and take it over once its record has not changed for `lease_duration` (as
they observed it, on their own clock: no two clocks are compared). A leader that cannot renew for
`renew_deadline` stops leading. Writes carry the Lease's resourceVersion, so of two replicas that try
at once only one wins (the other gets 409 Conflict). On a clean stop the leader releases the Lease
(an empty holder), so another takes over at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass

from lightkube import ApiError

from modelplane.kube.operator import resources as r
from modelplane.kube.operator.cluster import Cluster

logger = logging.getLogger("modelplane.operator.leader")


@dataclass(frozen=True)
class LeaseSettings:
    name: str = "modelplane-operator"
    namespace: str = "modelplane-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, cluster: Cluster, identity: str, settings: LeaseSettings) -> None:
        self.cluster = cluster
        self.identity = identity
        self.settings = settings
        self._observed: tuple | None = None  # the holder's record as last seen
        self._observed_at = 0.0  # when it last changed, on this replica's clock
        self._lease: dict | None = None

    async def acquire(self) -> None:
        """Returns once this replica leads."""
        logger.info(
            "%s: waiting to lead (Lease %s/%s)", self.identity, self.settings.namespace, self.settings.name
        )
        while not await self._try():
            await asyncio.sleep(self.settings.retry_period)
        logger.info("%s: leading", self.identity)

    async def keep(self) -> None:
        """Renews the Lease until it cannot for `renew_deadline`; returns then (leadership is lost)."""
        loop = asyncio.get_running_loop()
        last_renewal = loop.time()
        while True:
            await asyncio.sleep(self.settings.retry_period)
            if await self._try():
                last_renewal = loop.time()
            elif loop.time() - last_renewal > self.settings.renew_deadline or self._held_by_another():
                logger.error("%s: lost the Lease", self.identity)
                return

    async def release(self) -> None:
        """Gives the Lease up, if this replica holds it (read afresh: a renewal cut short by the stop
        may have changed it)."""
        try:
            lease = await self.cluster.get(r.LEASES, self.settings.name, self.settings.namespace)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = dict(lease["spec"], holderIdentity="", leaseDurationSeconds=1, renewTime=_now())
            await self.cluster.client.replace(r.LEASES({**lease, "spec": spec}))
            logger.info("%s: released the Lease", self.identity)
        except ApiError as error:
            logger.warning("%s: could not release the Lease: %s", self.identity, error)

    def _held_by_another(self) -> bool:
        holder = ((self._lease or {}).get("spec") or {}).get("holderIdentity")
        return bool(holder) and holder != self.identity

    async def _try(self) -> bool:
        """One attempt to take or renew the Lease; True when this replica holds it afterwards."""
        name, namespace = self.settings.name, self.settings.namespace
        try:
            lease = await self.cluster.get(r.LEASES, name, namespace)
            if lease is None:
                return await self._create()
            self._lease = lease
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
            loop = asyncio.get_running_loop()
            if record != self._observed:
                self._observed, self._observed_at = record, loop.time()
            duration = float(spec.get("leaseDurationSeconds") or self.settings.lease_duration)
            expired = loop.time() - self._observed_at > duration
            if holder and holder != self.identity and not expired:
                return False
            transitions = int(spec.get("leaseTransitions") or 0)
            renewed = {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.settings.lease_duration),
                "acquireTime": spec.get("acquireTime") if holder == self.identity else _now(),
                "renewTime": _now(),
                "leaseTransitions": transitions if holder == self.identity else transitions + 1,
            }
            self._lease = dict(await self.cluster.client.replace(r.LEASES({**lease, "spec": renewed})))
            return True
        except ApiError as error:
            if error.status.code != 409:
                logger.warning("%s: Lease %s/%s: %s", self.identity, namespace, name, error)
            return False
        except Exception as error:  # noqa: BLE001 - the API may be unreachable for a while: try again
            logger.warning("%s: Lease %s/%s: %s", self.identity, namespace, name, error)
            return False

    async def _create(self) -> bool:
        now = _now()
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.settings.name, "namespace": self.settings.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.settings.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        self._lease = dict(
            await self.cluster.client.create(r.LEASES(lease), namespace=self.settings.namespace)
        )
        return True
