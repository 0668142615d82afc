"""How many replicas a revision should have, decided as Knative's KPA decides it.

The platform feeds each revision's autoscaler a snapshot of the gateway's counters every tick and asks
for a decision; when a request arrives for a revision with no replica, the gateway's `on_demand`
callback asks for one at once:

    autoscaler = RevisionAutoscaler("iris-predictor-00001", settings, clock=time.monotonic)
    autoscaler.observe(gateway.revision_stats()["iris-predictor-00001"])
    decision = autoscaler.decide()   # ScaleDecision(desired_replicas=2, reason="stable: ...", panic=False)
    decision = autoscaler.wake()     # a request waits at zero: at least 1 replica, now

A decision goes through these steps, each explained in the decision's reason:

1. The metric (concurrency, or requests per second) averaged over the stable window (60 s) and over
   the panic window (6 s), divided by the per-replica target times the utilisation, gives the
   replicas each window wants. One tick may scale up at most 1000x and down at most 2x.
2. When the panic window wants at least 200% of the ready replicas the revision panics: it follows
   the larger of the two windows and never scales down, until a whole stable window has passed with
   no such burst.
3. A scale-down delay keeps the highest count decided within it.
4. `initial-scale` holds until that many replicas have been ready; then minReplicas and maxReplicas.
5. Zero (minReplicas 0) comes only after the revision has been active for a stable window and idle
   for the scale-to-zero grace period (or the pod retention period, if longer); until then one
   replica stays.

The clock must be the one the snapshots' `taken_at` come from (`time.monotonic` for the gateway).
An autoscaler is not thread-safe: the platform calls it from one thread (the gateway's `on_demand`
runs on the gateway's loop, so it hands the wake-up over rather than calling `wake` there).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from modelplane.control.autoscaling_settings import AutoscalerSettings, format_number, format_seconds

logger = logging.getLogger(__name__)


class StatsSnapshot(Protocol):
    """What the autoscaler reads from the gateway's `RevisionStats` for one revision."""

    @property
    def replicas(self) -> int: ...  # ready replicas
    @property
    def queued(self) -> int: ...  # requests waiting in the gateway
    @property
    def requests_total(self) -> int: ...
    @property
    def concurrency_seconds(self) -> float: ...  # time integral of the requests in flight
    @property
    def taken_at(self) -> float: ...


@dataclass(frozen=True)
class Sample:
    """One snapshot of a revision's counters, as the gateway's `RevisionStats` gives them."""

    taken_at: float
    concurrency_seconds: float = 0.0
    requests_total: int = 0
    queued: int = 0
    replicas: int = 0


@dataclass(frozen=True)
class ScaleDecision:
    desired_replicas: int
    reason: str
    panic: bool = False


@dataclass(frozen=True)
class _Average:
    """The metric averaged over the `seconds` before the newest sample."""

    value: float
    seconds: float


class RevisionAutoscaler:
    """The scaling state of one revision: its recent samples, panic mode, and how long it has been idle."""

    def __init__(
        self, revision: str, settings: AutoscalerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.revision = revision
        self.settings = settings
        self._clock = clock
        self._samples: deque[Sample] = deque()
        self._panicked_at: float | None = None  # the last tick over the panic threshold
        self._max_panic_replicas = 0
        # (time, replicas wanted) of the decisions within the scale-down delay
        self._recent: deque[tuple[float, int]] = deque()
        self._initial_scale_reached = settings.initial_scale <= 0
        self._active_since = clock()
        self._ever_ready = False
        self._idle_since: float | None = None
        self._at_zero = settings.initial_scale == 0  # the last decision was zero (or the first will be)
        self._last: ScaleDecision | None = None
        self._load_wants = (
            0  # replicas the metric asks for, before the rate limits: above 0, activation-scale
        )

    # ---- input ----

    def observe(self, stats: StatsSnapshot) -> None:
        """Records a snapshot. Counters that went backwards (a restarted gateway) start a new history."""
        sample = Sample(
            stats.taken_at, stats.concurrency_seconds, stats.requests_total, stats.queued, stats.replicas
        )
        if self._samples:
            newest = self._samples[-1]
            if sample.taken_at <= newest.taken_at:
                return
            if (
                sample.concurrency_seconds < newest.concurrency_seconds
                or sample.requests_total < newest.requests_total
            ):
                self._samples.clear()
        self._samples.append(sample)
        if sample.replicas >= self.settings.initial_scale:
            self._initial_scale_reached = True
        if sample.replicas and not self._ever_ready:
            # A new revision is active from its first ready replica, not from its creation: one that took
            # long to load still gets a whole stable window before it may go to zero.
            self._ever_ready = True
            self._active_since = max(self._active_since, sample.taken_at)
        self._forget_before(sample.taken_at - self.settings.stable_window)

    def _forget_before(self, start: float) -> None:
        """Keeps the samples of the stable window, and the last one before it as the window's start."""
        while len(self._samples) > 1 and self._samples[1].taken_at <= start:
            self._samples.popleft()

    # ---- decisions ----

    def wake(self) -> ScaleDecision:
        """A request waits in the gateway for a replica (its `on_demand`): at least one, immediately."""
        self._active_since = self._clock()
        self._idle_since = None
        current = 0 if self._at_zero or self._last is None else self._last.desired_replicas
        wanted = max(1, current, self.settings.min_replicas, self._activation_scale)
        if current == 0:
            reason = f"scale from zero: a request waits in the gateway -> {wanted}"
        else:
            reason = f"a request waits in the gateway; already scaling to {wanted}"
        return self._decided(ScaleDecision(wanted, reason, self._panicked_at is not None))

    def decide(self) -> ScaleDecision:
        """The replicas the revision should have now, with the reason."""
        now = self._clock()
        ready = self._samples[-1].replicas if self._samples else 0
        stable = self._average(self.settings.stable_window)
        panic = self._average(self.settings.panic_window)
        if stable is None or panic is None:
            wanted = self._last.desired_replicas if self._last else self.settings.initial_scale
            reason = f"no metrics yet (two samples are needed): keeping {wanted}"
            self._load_wants = wanted
        else:
            wanted, reason = self._kpa(now, stable, panic, ready)
        wanted, reason = self._delay_scale_down(now, wanted, reason)
        wanted, reason = self._bound(wanted, reason)
        wanted, reason = self._scale_to_zero(now, wanted, reason)
        return self._decided(ScaleDecision(wanted, reason, self._panicked_at is not None))

    def _kpa(self, now: float, stable: _Average, panic: _Average, ready: int) -> tuple[int, str]:
        """Knative's decider: the replicas the stable and panic windows want, within the rate limits."""
        settings = self.settings
        basis = max(1, ready)  # at zero, rates and the threshold count one replica
        most = math.ceil(settings.max_scale_up_rate * basis)
        least = math.floor(basis / settings.max_scale_down_rate)
        stable_wants = math.ceil(stable.value / settings.target_per_replica)
        panic_wants = math.ceil(panic.value / settings.target_per_replica)
        self._load_wants = max(stable_wants, panic_wants)
        over_threshold = panic_wants / basis >= settings.panic_threshold

        if over_threshold:
            self._panicked_at = now
        elif self._panicked_at is not None and now > self._panicked_at + settings.stable_window:
            self._panicked_at = None
            self._max_panic_replicas = 0

        if self._panicked_at is None:
            wanted = min(max(stable_wants, least), most)
            reason = f"stable: {self._describe(stable)} -> {stable_wants}"
            return wanted, reason + self._rate_limited(stable_wants, wanted)

        wanted = min(max(stable_wants, panic_wants, least), most)
        if over_threshold:
            reason = (
                f"panic: {self._describe(panic)} -> {panic_wants}, at least "
                f"{format_number(settings.panic_threshold_percentage)}% of {basis} ready"
            )
        else:
            calm_for = format_seconds(now - self._panicked_at)
            reason = f"panic (no burst for {calm_for} of {format_seconds(settings.stable_window)}): "
            reason += f"{self._describe(panic)} -> {panic_wants}"
        if stable_wants > panic_wants:
            reason += f"; the stable window wants {stable_wants}"
        reason += self._rate_limited(max(stable_wants, panic_wants), wanted)
        if wanted < self._max_panic_replicas:
            reason += f"; keeping {self._max_panic_replicas}: no scale-down while panicking"
        self._max_panic_replicas = max(self._max_panic_replicas, wanted)
        return self._max_panic_replicas, reason

    def _rate_limited(self, wanted: int, allowed: int) -> str:
        if allowed < wanted:
            rate = format_number(self.settings.max_scale_up_rate)
            return f"; {allowed} at most this tick (max scale-up rate {rate})"
        if allowed > wanted:
            rate = format_number(self.settings.max_scale_down_rate)
            return f"; {allowed} at least this tick (max scale-down rate {rate})"
        return ""

    def _delay_scale_down(self, now: float, wanted: int, reason: str) -> tuple[int, str]:
        """The highest count wanted within the scale-down delay."""
        delay = self.settings.scale_down_delay
        if delay <= 0:
            return wanted, reason
        self._recent.append((now, wanted))
        while self._recent[0][0] <= now - delay:
            self._recent.popleft()
        highest = max(count for _, count in self._recent)
        if highest > wanted:
            return highest, reason + f"; keeping {highest} for the {format_seconds(delay)} scale-down delay"
        return wanted, reason

    def _bound(self, wanted: int, reason: str) -> tuple[int, str]:
        settings = self.settings
        if not self._initial_scale_reached and wanted < settings.initial_scale:
            wanted = settings.initial_scale
            reason += f"; initial-scale {wanted} until {wanted} replicas have been ready"
        if wanted < settings.min_replicas:
            wanted = settings.min_replicas
            reason += f"; raised to minReplicas {wanted}"
        if self._load_wants > 0 and wanted < self._activation_scale:
            wanted = self._activation_scale
            reason += f"; raised to activation-scale {wanted}"
        if settings.max_replicas and wanted > settings.max_replicas:
            wanted = settings.max_replicas
            reason += f"; capped at maxReplicas {wanted}"
        return wanted, reason

    @property
    def _activation_scale(self) -> int:
        """The least a running revision has: `activation-scale`, within maxReplicas."""
        settings = self.settings
        return min(settings.activation_scale, settings.max_replicas or settings.activation_scale)

    def _scale_to_zero(self, now: float, wanted: int, reason: str) -> tuple[int, str]:
        """Zero only once the revision has been active for a stable window and idle through the grace
        period; until then it keeps one replica."""
        settings = self.settings
        if wanted > 0:
            if self._at_zero:
                self._active_since = now
            self._idle_since = None
            return wanted, reason
        if self._at_zero:
            return 0, reason + "; staying at zero"
        if not settings.enable_scale_to_zero:
            return 1, reason + "; keeping 1: scale to zero is disabled"
        active_for = now - self._active_since
        if active_for < settings.stable_window:
            return 1, reason + (
                f"; keeping 1: active for {format_seconds(active_for)}, "
                f"less than the {format_seconds(settings.stable_window)} stable window"
            )
        if self._idle_since is None:
            self._idle_since = now
        idle_for = now - self._idle_since
        wait = settings.scale_to_zero_wait
        if idle_for < wait:
            return 1, reason + (
                f"; keeping 1 for the {self._zero_wait_name()}: idle for {format_seconds(idle_for)} "
                f"of {format_seconds(wait)}"
            )
        return 0, reason + f"; idle through the {self._zero_wait_name()} -> 0"

    def _zero_wait_name(self) -> str:
        settings = self.settings
        if settings.scale_to_zero_pod_retention_period > settings.scale_to_zero_grace_period:
            return f"{format_seconds(settings.scale_to_zero_pod_retention_period)} pod retention period"
        return f"{format_seconds(settings.scale_to_zero_grace_period)} scale-to-zero grace period"

    def _decided(self, decision: ScaleDecision) -> ScaleDecision:
        last = self._last
        if last is None or last.desired_replicas != decision.desired_replicas:
            before = "none" if last is None else last.desired_replicas
            logger.info(
                "autoscaler %s: %s -> %d replicas: %s",
                self.revision,
                before,
                decision.desired_replicas,
                decision.reason,
            )
        elif last.panic != decision.panic:
            change = "enters panic mode" if decision.panic else "leaves panic mode"
            logger.info(
                "autoscaler %s: %s, keeping %d replicas: %s",
                self.revision,
                change,
                decision.desired_replicas,
                decision.reason,
            )
        else:
            logger.debug("autoscaler %s: %s", self.revision, decision.reason)
        self._last = decision
        self._at_zero = decision.desired_replicas == 0
        return decision

    # ---- the metric ----

    def _average(self, window: float) -> _Average | None:
        """The metric over the `window` seconds before the newest sample, or over all the samples there
        are when they span less; None with fewer than two samples."""
        if len(self._samples) < 2:
            return None
        newest = self._samples[-1]
        start = newest.taken_at - window
        first = next((s for s in reversed(self._samples) if s.taken_at <= start), self._samples[0])
        seconds = newest.taken_at - first.taken_at
        if self.settings.metric == "rps":
            return _Average((newest.requests_total - first.requests_total) / seconds, seconds)
        return _Average(self._concurrency_seconds(first, newest) / seconds, seconds)

    def _concurrency_seconds(self, first: Sample, newest: Sample) -> float:
        """Requests in flight at the replicas, integrated by the gateway, plus the requests waiting in it
        (as Knative's activator reports those it holds): each sample's queue stands for the time since the
        sample before."""
        waiting = 0.0
        previous = first
        for sample in self._samples:
            if sample.taken_at > first.taken_at:
                waiting += sample.queued * (sample.taken_at - previous.taken_at)
                previous = sample
        return newest.concurrency_seconds - first.concurrency_seconds + waiting

    def _describe(self, average: _Average) -> str:
        settings = self.settings
        what = "requests per second" if settings.metric == "rps" else "concurrency"
        target = (
            f"target {format_number(settings.target_per_replica)} "
            f"({format_number(settings.target_utilization_percentage)}% of {format_number(settings.target)})"
        )
        # The samples' span wanders by milliseconds around the window's (60.01s): said as people say it.
        span = round(average.seconds) if average.seconds >= 10 else round(average.seconds, 1)
        return f"average {what} {format_number(average.value)} over {format_seconds(span)} / {target}"
