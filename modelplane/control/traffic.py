"""How a component's traffic is split between its revisions, as Knative does for KServe.

Without `canaryTrafficPercent`, the newest revision takes all the traffic once it is ready, and becomes
the rolled-out revision. With it, and a rolled-out revision older than the newest, the newest ready
revision takes that percentage (tag `latest`) and the rolled-out one the rest (tag `prev`): removing the
percentage promotes the newest, `0` pins the traffic to the previous one. Until the newest revision is
ready, the rolled-out one keeps all the traffic. A percentage under 100 once the newest revision is itself
rolled out rolls back, as KServe's status does (PropagateStatus): the previous rolled-out revision becomes
the rolled-out one again and takes the rest.

The entry that follows the newest revision (Knative's `latestRevision: true`) follows the latest *ready*
one: while a newer revision loads, or after it failed, a canary that was ready keeps its share, and
callers pass it as `latest` (`latest_ready_revision`).

With KServe's `enable-tag-routing`, a lone latest entry is tagged `latest` too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrafficTarget:
    revision: str
    percent: int
    latest: bool  # Knative's latestRevision: whether this entry follows the newest ready revision
    tag: str | None = None


def traffic_targets(
    latest: str,
    latest_ready: bool,
    rolled_out: str | None,
    canary_percent: int | None,
    tag_routing: bool = False,
    previous_rolled_out: str | None = None,
) -> tuple[TrafficTarget, ...]:
    """The split for one component; empty when nothing can take traffic yet."""
    if latest_ready:
        rolled_out = rollback_to(latest, rolled_out, canary_percent, previous_rolled_out) or rolled_out
    split = canary_percent is not None and canary_percent < 100
    if rolled_out == latest or (latest_ready and rolled_out is None) or (latest_ready and not split):
        return (TrafficTarget(latest, 100, True, "latest" if tag_routing else None),)
    if not latest_ready:
        return (TrafficTarget(rolled_out, 100, False),) if rolled_out else ()
    percent = max(0, int(canary_percent))
    return (
        TrafficTarget(latest, percent, True, "latest"),
        TrafficTarget(rolled_out, 100 - percent, False, "prev"),
    )


def rollback_to(
    latest: str, rolled_out: str | None, canary_percent: int | None, previous_rolled_out: str | None
) -> str | None:
    """The revision a percentage under 100 rolls back to once the newest revision is rolled out: the
    previous rolled-out one; None when there is no rollback."""
    if rolled_out != latest or canary_percent is None or canary_percent >= 100:
        return None
    return previous_rolled_out if previous_rolled_out not in (None, latest) else None


def latest_ready_revision(
    latest: str, latest_takes_traffic: bool, latest_ready: str | None, latest_ready_takes_traffic: bool
) -> str | None:
    """The revision the latest target follows: the newest once it takes traffic, else the one that was
    the latest ready before it, while that still does; None when neither does."""
    if latest_takes_traffic:
        return latest
    return latest_ready if latest_ready is not None and latest_ready_takes_traffic else None


def rolled_out_after(
    targets: tuple[TrafficTarget, ...], latest_ready: bool, rolled_out: str | None
) -> str | None:
    """The rolled-out revision once `targets` are in effect: the newest one when it got all the traffic,
    the one tagged `prev` when there is one (the previous one, after a rollback)."""
    if latest_ready and len(targets) == 1 and targets[0].latest and targets[0].percent == 100:
        return targets[0].revision
    return next((t.revision for t in targets if not t.latest and t.tag == "prev"), rolled_out)


def takes_traffic(ready_now: bool, failed: bool, was_ready: bool) -> bool:
    """Whether a revision counts as ready for the split: it has become ready and has not failed since.
    A revision woken from zero has no ready replica while it scales up, yet keeps its share, as a
    Knative revision at zero stays Ready (its requests wait in the gateway)."""
    return ready_now or (was_ready and not failed)
