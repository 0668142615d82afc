"""Knative's KPA rules, one by one, on a revision whose gateway counters advance on an injected clock."""

from __future__ import annotations

import logging

from modelplane.control.autoscaler import RevisionAutoscaler, Sample, ScaleDecision
from modelplane.control.autoscaling_settings import AutoscalerSettings
from modelplane.local.gateway.revisions import RevisionStats

REVISION = "iris-predictor-00001"
TICK = 2.0  # seconds between samples, as Knative's autoscaler ticks


class Revision:
    """A revision behind the gateway: its counters grow with the load, tick by tick, and after each tick
    the autoscaler decides."""

    def __init__(self, **settings) -> None:
        self.now = 1000.0
        self.concurrency_seconds = 0.0
        self.requests_total = 0
        self.autoscaler = RevisionAutoscaler(REVISION, AutoscalerSettings(**settings), clock=lambda: self.now)
        self.autoscaler.observe(Sample(self.now))  # the gateway's counters when the revision starts

    def run(
        self, seconds: float, concurrency: float = 0.0, rps: float = 0.0, ready: int = 1, queued: int = 0
    ) -> list[ScaleDecision]:
        decisions = []
        for _ in range(round(seconds / TICK)):
            self.now += TICK
            self.concurrency_seconds += concurrency * TICK
            self.requests_total += round(rps * TICK)
            self.autoscaler.observe(
                Sample(self.now, self.concurrency_seconds, self.requests_total, queued, ready)
            )
            decisions.append(self.autoscaler.decide())
        return decisions

    def last(self, seconds: float, **load) -> ScaleDecision:
        return self.run(seconds, **load)[-1]


def replicas(decisions: list[ScaleDecision]) -> list[int]:
    return [d.desired_replicas for d in decisions]


# ---- the stable window ----


def test_the_stable_window_average_over_the_target_gives_the_replicas():
    revision = Revision(target=10, container_concurrency=10)
    decision = revision.last(60, concurrency=12.3, ready=2)
    assert decision == ScaleDecision(
        2, "stable: average concurrency 12.3 over 1m / target 7 (70% of 10) -> 2", panic=False
    )
    assert revision.last(60, concurrency=30, ready=2).desired_replicas == 5  # ceil(30 / 7)


def test_a_window_the_samples_span_a_few_milliseconds_over_is_said_in_whole_seconds():
    """The gateway's snapshots are taken a tick apart, give or take the loop's lateness."""
    now = 1060.013
    autoscaler = RevisionAutoscaler(REVISION, AutoscalerSettings(target=10), clock=lambda: now)
    autoscaler.observe(Sample(1000.0))
    autoscaler.observe(Sample(now, concurrency_seconds=7 * 60.013, replicas=1))
    assert "average concurrency 7 over 1m / target 7" in autoscaler.decide().reason


def test_requests_per_second():
    revision = Revision(metric="rps", target=200)
    decision = revision.last(60, rps=300, ready=2)
    assert decision.desired_replicas == 3  # ceil(300 / 140)
    assert decision.reason.startswith(
        "stable: average requests per second 300 over 1m / target 140 (70% of 200)"
    )


def test_a_window_not_yet_full_averages_what_there_is():
    revision = Revision(target=10)
    assert revision.last(10, concurrency=14, ready=2).reason.startswith(
        "stable: average concurrency 14 over 10s"
    )


def test_no_decision_without_two_samples():
    revision = Revision()
    assert revision.autoscaler.decide() == ScaleDecision(
        1, "no metrics yet (two samples are needed): keeping 1"
    )


def test_requests_waiting_in_the_gateway_count_as_concurrency():
    revision = Revision(target=10, container_concurrency=10)
    # Both replicas are at their limit of 10 and 8 more requests wait: 28 concurrent requests.
    assert revision.last(60, concurrency=20, queued=8, ready=2).desired_replicas == 4  # ceil(28 / 7)


def test_the_gateways_revision_stats_are_samples():
    revision = Revision(target=10)
    for at, seconds in ((1002.0, 0.0), (1004.0, 56.0)):  # 14 on average since 1000
        revision.now = at
        stats = RevisionStats(REVISION, 2, 14, 0, 40, seconds, taken_at=at)
        revision.autoscaler.observe(stats)
    assert revision.autoscaler.decide().desired_replicas == 2


def test_counters_that_go_backwards_start_a_new_history():
    revision = Revision(target=10)
    revision.run(60, concurrency=70, ready=10)
    revision.concurrency_seconds = 0.0  # the gateway restarted
    decision = revision.run(2, concurrency=7, ready=10)[-1]
    assert decision.reason.startswith("no metrics yet")
    assert revision.last(2, concurrency=7, ready=10).reason.startswith(
        "stable: average concurrency 7 over 2s"
    )


# ---- rate limits ----


def test_one_tick_scales_down_at_most_by_half():
    revision = Revision(target=10)
    decision = revision.last(60, concurrency=0, ready=8)
    assert decision.desired_replicas == 4
    assert decision.reason.endswith("-> 0; 4 at least this tick (max scale-down rate 2)")


def test_one_tick_scales_up_at_most_by_the_rate():
    revision = Revision(target=10, max_scale_up_rate=2, panic_threshold_percentage=1000)
    decision = revision.last(60, concurrency=70, ready=3)
    assert decision.desired_replicas == 6
    assert decision.reason.endswith("-> 10; 6 at most this tick (max scale-up rate 2)")


# ---- panic ----


def test_a_burst_in_the_panic_window_panics_and_scales_on_it():
    revision = Revision(target=10)
    assert revision.last(60, concurrency=7, ready=1) == ScaleDecision(
        1, "stable: average concurrency 7 over 1m / target 7 (70% of 10) -> 1"
    )
    decision = revision.last(6, concurrency=50, ready=1)
    assert decision == ScaleDecision(
        8,
        "panic: average concurrency 50 over 6s / target 7 (70% of 10) -> 8, at least 200% of 1 ready",
        panic=True,
    )


def test_below_the_panic_threshold_the_stable_window_rules():
    revision = Revision(target=10)
    revision.run(60, concurrency=14, ready=2)
    decision = revision.last(6, concurrency=20, ready=2)  # the panic window wants 3: 150% of 2 ready
    assert decision.panic is False
    assert decision.reason.startswith("stable: ")
    assert revision.last(6, concurrency=28, ready=2).panic is True  # 4 is 200% of 2


def test_no_scale_down_while_panicking_nor_for_a_stable_window_after():
    revision = Revision(target=10)
    revision.run(60, concurrency=7, ready=1)
    assert revision.last(6, concurrency=50, ready=1).desired_replicas == 8
    calm = revision.run(60, concurrency=7, ready=8)  # the burst is over
    assert set(replicas(calm)) == {8}
    assert all(d.panic for d in calm)
    assert calm[-1].reason.endswith("; keeping 8: no scale-down while panicking")
    assert "panic (no burst for 1m of 1m)" in calm[-1].reason
    after = revision.last(2, concurrency=7, ready=8)
    assert after.panic is False
    assert after.desired_replicas == 4  # back to the stable window, at most halving per tick


def test_in_panic_the_larger_of_the_two_windows_counts():
    revision = Revision(target=10)
    revision.run(60, concurrency=7, ready=1)
    revision.run(6, concurrency=100, ready=1)
    decision = revision.last(6, concurrency=0, ready=15)  # the burst stopped as suddenly
    assert decision.panic is True
    assert decision.reason == (
        "panic (no burst for 6s of 1m): average concurrency 0 over 6s / target 7 (70% of 10) -> 0"
        "; the stable window wants 3; 7 at least this tick (max scale-down rate 2)"
        "; keeping 15: no scale-down while panicking"
    )


# ---- the scale-down delay ----


def test_the_scale_down_delay_keeps_the_highest_count_within_it():
    revision = Revision(target=10, scale_down_delay=30, max_scale_down_rate=1000)
    revision.run(60, concurrency=28, ready=4)
    decisions = revision.run(60, concurrency=7, ready=4)  # the stable window average falls slowly
    wanted = [int(d.reason.split("-> ")[1].split(";")[0]) for d in decisions]
    assert wanted[:10] == [4] * 9 + [3]
    last_wanting_four = 8
    counts = replicas(decisions)
    assert counts[: last_wanting_four + 15] == [4] * (last_wanting_four + 15)  # 30s after 4 was last wanted
    assert counts[last_wanting_four + 15] == 3
    assert decisions[9].reason.endswith("-> 3; keeping 4 for the 30s scale-down delay")


# ---- bounds and initial scale ----


def test_min_and_max_replicas():
    revision = Revision(target=10, min_replicas=2, max_replicas=3)
    assert revision.last(60, concurrency=0, ready=2).reason.endswith("; raised to minReplicas 2")
    decision = revision.last(60, concurrency=70, ready=3)
    assert decision.desired_replicas == 3
    assert decision.reason.endswith("; capped at maxReplicas 3")


def test_initial_scale_holds_until_that_many_replicas_have_been_ready():
    revision = Revision(target=10, initial_scale=3)
    assert revision.autoscaler.decide().desired_replicas == 3
    decision = revision.last(4, concurrency=0, ready=1)
    assert decision.desired_replicas == 3
    assert decision.reason.endswith("; initial-scale 3 until 3 replicas have been ready")
    revision.run(2, concurrency=0, ready=3)
    assert revision.last(60, concurrency=0, ready=1).desired_replicas == 1


def test_an_initial_scale_of_zero_starts_at_zero_until_a_request():
    revision = Revision(target=10, min_replicas=0, initial_scale=0)
    assert revision.autoscaler.decide() == ScaleDecision(
        0, "no metrics yet (two samples are needed): keeping 0; staying at zero"
    )
    assert revision.last(10, concurrency=0, ready=0).desired_replicas == 0
    assert revision.autoscaler.wake().desired_replicas == 1
    assert replicas(revision.run(10, concurrency=0, ready=1)) == [1] * 5


def test_activation_scale_is_the_least_a_running_revision_has():
    revision = Revision(target=10, min_replicas=0, activation_scale=3, max_replicas=5)
    assert revision.autoscaler.wake().desired_replicas == 3  # from zero: three at once
    decision = revision.last(60, concurrency=5, ready=3)  # one replica's worth of load
    assert decision.desired_replicas == 3
    assert decision.reason.endswith("; raised to activation-scale 3")
    counts = replicas(revision.run(60, concurrency=0, ready=3))  # the load leaves the window
    assert counts[0] == 3 and counts[-1] == 1
    assert replicas(revision.run(60, concurrency=0, ready=1))[-1] == 0  # and it goes to zero
    assert Revision(target=10, activation_scale=9, max_replicas=2).autoscaler.wake().desired_replicas == 2


# ---- scale to zero ----


def test_an_idle_revision_goes_to_zero_after_a_stable_window_and_the_grace_period():
    revision = Revision(target=10, min_replicas=0)
    decisions = revision.run(120, concurrency=0, ready=1)
    counts = replicas(decisions)
    zero_at = counts.index(0)
    # Ready from the first tick: active for a stable window from then, then idle for the grace period.
    assert (zero_at + 1) * TICK == TICK + 60 + 30
    assert set(counts[zero_at:]) == {0}
    assert decisions[zero_at - 1].reason.endswith(
        "; keeping 1 for the 30s scale-to-zero grace period: idle for 28s of 30s"
    )
    assert decisions[zero_at].reason == (
        "stable: average concurrency 0 over 1m / target 7 (70% of 10) -> 0"
        "; idle through the 30s scale-to-zero grace period -> 0"
    )
    assert decisions[0].reason.endswith("; keeping 1: active for 0s, less than the 1m stable window")
    assert decisions[zero_at + 1].reason.endswith("; staying at zero")


def test_a_longer_pod_retention_period_keeps_the_last_replica_longer():
    revision = Revision(target=10, min_replicas=0, scale_to_zero_pod_retention_period=90)
    counts = replicas(revision.run(200, concurrency=0, ready=1))
    assert (counts.index(0) + 1) * TICK == TICK + 60 + 90


def test_with_scale_to_zero_disabled_one_replica_stays():
    revision = Revision(target=10, min_replicas=0, enable_scale_to_zero=False)
    decision = revision.last(200, concurrency=0, ready=1)
    assert decision.desired_replicas == 1
    assert decision.reason.endswith("; keeping 1: scale to zero is disabled")


def test_a_request_restarts_the_idle_countdown():
    revision = Revision(target=10, min_replicas=0)
    revision.run(80, concurrency=0, ready=1)  # 20s into the grace period
    revision.run(2, concurrency=1, ready=1)
    counts = replicas(revision.run(200, concurrency=0, ready=1))
    # No concurrency for a whole stable window after the request, then the whole grace period again.
    assert (counts.index(0) + 1) * TICK == 60 + 30


def test_a_request_at_zero_wakes_the_revision_at_once():
    revision = Revision(target=10, min_replicas=0)
    revision.run(100, concurrency=0, ready=1)
    assert revision.autoscaler.decide().desired_replicas == 0
    assert revision.autoscaler.wake() == ScaleDecision(
        1, "scale from zero: a request waits in the gateway -> 1"
    )
    assert revision.autoscaler.wake() == ScaleDecision(
        1, "a request waits in the gateway; already scaling to 1"
    )
    # The request is served quickly: the revision still stays up a stable window, then the grace period.
    counts = replicas(revision.run(120, concurrency=0, ready=1))
    assert (counts.index(0) + 1) * TICK == 60 + 30


def test_requests_waiting_at_zero_scale_up_on_the_next_tick_too():
    revision = Revision(target=1, container_concurrency=1, min_replicas=0)
    revision.run(100, concurrency=0, ready=1)
    assert revision.autoscaler.decide().desired_replicas == 0
    decision = revision.last(2, concurrency=0, ready=0, queued=5)
    # 5 requests waited for the last 2s of the 6s panic window: 1.67 on average, / 0.7 per replica.
    assert decision == ScaleDecision(
        3,
        "panic: average concurrency 1.67 over 6s / target 0.7 (70% of 1) -> 3, at least 200% of 1 ready",
        panic=True,
    )


# ---- what is logged ----


def test_a_change_is_logged_with_its_reason(caplog):
    caplog.set_level(logging.INFO, logger="modelplane.control.autoscaler")
    revision = Revision(target=10)
    revision.run(60, concurrency=7, ready=1)
    revision.run(6, concurrency=50, ready=1)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    # Only changes are logged: the first decision, then the three ticks of the burst.
    assert messages[0] == (
        "autoscaler iris-predictor-00001: none -> 1 replicas: stable: average concurrency 7 over 2s"
        " / target 7 (70% of 10) -> 1"
    )
    assert [m.split(": ")[1] for m in messages[1:]] == [
        "1 -> 4 replicas",
        "4 -> 6 replicas",
        "6 -> 8 replicas",
    ]
    assert messages[-1].endswith(
        "panic: average concurrency 50 over 6s / target 7 (70% of 10) -> 8, at least 200% of 1 ready"
    )


def test_a_revision_slow_to_load_gets_a_whole_stable_window_once_ready():
    revision = Revision(target=10, min_replicas=0)
    loading = replicas(revision.run(100, concurrency=0, ready=0))
    assert set(loading) == {1}  # its initial scale while it loads
    counts = replicas(revision.run(120, concurrency=0, ready=1))
    assert (counts.index(0) + 1) * TICK == TICK + 60 + 30  # counted from its first ready replica


def test_leaving_panic_mode_is_logged_as_such(caplog):
    revision = Revision(target=10)
    revision.run(10, concurrency=7, ready=1)
    revision.run(6, concurrency=30, ready=1)  # a burst: panic, 5 replicas
    with caplog.at_level("INFO", logger="modelplane.control.autoscaler"):
        revision.run(120, concurrency=30, ready=5)
    assert any("leaves panic mode, keeping 5 replicas" in message for message in caplog.messages)
