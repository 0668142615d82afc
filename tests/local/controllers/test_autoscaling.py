"""The platform's autoscaling loop: decisions become replica counts; the gateway's demand wakes a
revision at zero from another thread."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Collection
from dataclasses import replace

from modelplane.control.autoscaling_settings import AutoscalerSettings
from modelplane.control.hpa_settings import resource_scaling
from modelplane.control.revisions import Revision
from modelplane.local.controllers.autoscaling import Autoscaling
from modelplane.local.controllers.graphs import router_template
from modelplane.local.gateway.revisions import RevisionStats


class Replicas:
    """Records the counts it is scaled to."""

    def __init__(self) -> None:
        self.desired = 0
        self.counts: list[int] = []
        self.busy: list[frozenset[str]] = []  # what each scaling was told is busy

    def scale(self, count: int, busy: Collection[str] = ()) -> None:
        self.desired = count
        self.counts.append(count)
        self.busy.append(frozenset(busy))


def stats(revision: str, taken_at: float, concurrency_seconds: float, replicas: int = 1) -> RevisionStats:
    return RevisionStats(revision, replicas, 0, 0, 0, concurrency_seconds, taken_at)


def test_a_revision_starts_at_its_initial_scale_within_min_and_max():
    autoscaling = Autoscaling()
    assert autoscaling.track("a", AutoscalerSettings(min_replicas=3), Replicas(), lambda: None) == 3
    assert autoscaling.track("b", AutoscalerSettings(min_replicas=0), Replicas(), lambda: None) == 1
    settings = AutoscalerSettings(min_replicas=0, max_replicas=2, initial_scale=5)
    assert autoscaling.track("c", settings, Replicas(), lambda: None) == 2


def test_each_tick_scales_to_the_decision_and_says_so():
    now = time.monotonic()
    snapshots = {"rev": stats("rev", now - 2, 0.0)}
    autoscaling = Autoscaling()
    autoscaling._stats = lambda: snapshots
    replicas, scaled = Replicas(), []
    settings = AutoscalerSettings(target=1, min_replicas=1)
    replicas.desired = autoscaling.track("rev", settings, replicas, lambda: scaled.append(replicas.desired))
    autoscaling.scale_all()
    assert replicas.counts == [] and scaled == []  # one sample: no decision to change anything yet

    snapshots["rev"] = stats("rev", now, 8.0)  # 4 requests in flight on average over 2 s
    autoscaling.scale_all()
    assert replicas.counts == [6] and scaled == [6]  # 4 / (1 x 70%) -> 6

    autoscaling.forget("rev")
    snapshots["rev"] = stats("rev", now + 2, 8.0, replicas=6)
    autoscaling.scale_all()
    assert replicas.counts == [6]


def test_the_gateway_wakes_a_revision_at_zero_from_its_own_thread():
    async def scenario():
        autoscaling = Autoscaling(tick=3600)
        autoscaling.start(dict)
        replicas, woken = Replicas(), asyncio.Event()
        settings = AutoscalerSettings(min_replicas=0, initial_scale=0)
        replicas.desired = autoscaling.track("rev", settings, replicas, woken.set)
        assert replicas.desired == 0
        try:
            gateway = threading.Thread(
                target=lambda: [autoscaling.wake_from_any_thread("rev") for _ in range(50)]
            )
            gateway.start()
            gateway.join()
            await asyncio.wait_for(woken.wait(), 30)
            assert replicas.counts == [1]  # scaled once, however many requests wait
            autoscaling.wake_from_any_thread("unknown")  # a revision it does not scale: nothing happens
            await asyncio.sleep(0.05)
        finally:
            await autoscaling.close()

    asyncio.run(scenario())


class RevisionReplicasLike(Replicas):
    def __init__(self, name: str, template: dict) -> None:
        super().__init__()
        self.revision = Revision(name, "predictor", 1, "digest", template)


def test_a_stable_revision_lends_replicas_to_its_canaries_and_gets_them_back():
    autoscaling = Autoscaling()
    fixed = RevisionReplicasLike(
        "fixed", {"minReplicas": 4, "scalingAnnotations": {"serving.kserve.io/autoscalerClass": "none"}}
    )
    autoscaling.start_scaling(fixed, lambda: None)
    assert fixed.desired == 4
    autoscaling.lower_minimum(fixed, 3)
    assert fixed.desired == 1
    autoscaling.lower_minimum(fixed, 5)
    assert fixed.desired == 1  # one always stays
    autoscaling.lower_minimum(fixed, 0)
    assert fixed.desired == 4

    scaled = RevisionReplicasLike("scaled", {})
    autoscaling.track("scaled", AutoscalerSettings(min_replicas=3), scaled, lambda: None)
    autoscaling.lower_minimum(scaled, 2)
    assert autoscaling._tracked["scaled"].autoscaler.settings.min_replicas == 1
    autoscaling.lower_minimum(scaled, 0)
    assert autoscaling._tracked["scaled"].autoscaler.settings.min_replicas == 3

    to_zero = RevisionReplicasLike("to-zero", {})
    autoscaling.track("to-zero", AutoscalerSettings(min_replicas=0), to_zero, lambda: None)
    autoscaling.lower_minimum(to_zero, 2)
    assert autoscaling._tracked["to-zero"].autoscaler.settings.min_replicas == 0


class MeasuredReplicas(RevisionReplicasLike):
    """Replicas whose ready processes are given: the resource autoscaler reads them from /proc."""

    def __init__(self, name: str, template: dict, pids: list[int]) -> None:
        super().__init__(name, template)
        self.pids = pids
        self.replicas = pids

    def ready_pids(self) -> list[int]:
        return self.pids


def test_a_revision_scaled_on_cpu_is_measured_from_its_processes_each_sync():
    async def scenario():
        busy = await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
        try:
            template = {
                "minReplicas": 1,
                "maxReplicas": 3,
                "hpa": {"class": "hpa", "metrics": []},  # cpu at 80% of the request
                "resources": {"requests": {"cpu": "100m"}},
            }
            replicas = MeasuredReplicas("spinning", template, [busy.pid])
            scaled = []
            autoscaling = Autoscaling(tick=3600, sync_period=0.5)
            autoscaling.start_scaling(replicas, lambda: scaled.append(replicas.desired))
            assert replicas.counts == [1]
            autoscaling.start(dict)
            async with asyncio.timeout(30):
                while replicas.desired < 3:  # a whole core against a tenth of one: 3, the maximum
                    await asyncio.sleep(0.1)
            assert scaled == [3]
            autoscaling.lower_minimum(replicas, 2)
            assert autoscaling._by_resources["spinning"].autoscaler.settings.min_replicas == 1
            await autoscaling.close()
        finally:
            busy.kill()
            await busy.wait()

    asyncio.run(scenario())


def test_a_standard_graph_router_scaled_on_cpu_gets_an_hpa():
    metadata = {"name": "g", "annotations": {"serving.kserve.io/deploymentMode": "Standard"}}
    template = router_template(
        {"nodes": {}}, {"scaleMetric": "cpu", "scaleTarget": 50, "maxReplicas": 2}, metadata
    )
    settings = resource_scaling(template)
    assert settings is not None and settings.describe() == "cpu 50% of the request"
    assert resource_scaling(router_template({"nodes": {}}, {"scaleMetric": "cpu"}, {"name": "g"})) is None


class RevisionReplicas(Replicas):
    """A revision's replicas, named by their revision as the platform's are."""

    def __init__(self, template: dict) -> None:
        super().__init__()
        self.revision = Revision("web-predictor-00002", "predictor", 2, "digest", template)


def test_a_rolling_update_caps_what_the_autoscaler_decides_and_lifts_the_cap_when_done():
    now = time.monotonic()
    snapshots = {"web-predictor-00002": stats("web-predictor-00002", now - 2, 0.0)}
    autoscaling = Autoscaling()
    autoscaling._stats = lambda: snapshots
    replicas = RevisionReplicas({"minReplicas": 1, "maxReplicas": 10})
    autoscaling.cap(replicas, 1)
    autoscaling.start_scaling(replicas, lambda: None, initial_scale=4)
    assert replicas.counts == [1]  # it wants the 4 of the revision it replaces, and may have 1
    autoscaling.cap(replicas, 3)
    assert replicas.counts == [1, 3]
    snapshots["web-predictor-00002"] = stats("web-predictor-00002", now, 16.0, replicas=3)  # 8 in flight
    autoscaling.scale_all()
    assert replicas.counts == [1, 3]  # it decides more, and is held at 3
    autoscaling.cap(replicas, None)
    assert replicas.counts[-1] > 3  # the rollout is over: what it decided


def test_a_fixed_count_keeps_to_a_cap_too():
    autoscaling = Autoscaling()
    annotations = {"serving.kserve.io/autoscalerClass": "none"}  # scaled from outside: a fixed count
    replicas = RevisionReplicas({"minReplicas": 3, "scalingAnnotations": annotations})
    autoscaling.cap(replicas, 2)
    autoscaling.start_scaling(replicas, lambda: None)
    autoscaling.cap(replicas, None)
    assert replicas.counts == [2, 3]


def test_a_revision_told_what_it_lends_before_it_scales_starts_with_that_much_less():
    """A restart in place finds the canaries ready before the stable revision starts: it starts lowered."""
    autoscaling = Autoscaling()
    fixed = RevisionReplicasLike(
        "fixed", {"minReplicas": 3, "scalingAnnotations": {"serving.kserve.io/autoscalerClass": "none"}}
    )
    autoscaling.lower_minimum(fixed, 2)
    assert fixed.counts == []  # not scaled before it starts
    autoscaling.start_scaling(fixed, lambda: None)
    assert fixed.counts == [1]

    scaled = RevisionReplicasLike("scaled", {"minReplicas": 3})
    autoscaling.lower_minimum(scaled, 1)
    autoscaling.start_scaling(scaled, lambda: None)
    assert scaled.counts == [2]
    autoscaling.lower_minimum(scaled, 0)
    assert autoscaling._tracked["scaled"].autoscaler.settings.min_replicas == 3


def test_scaling_down_tells_the_replicas_which_of_them_the_gateway_has_requests_on():
    autoscaling = Autoscaling()
    busy = frozenset({"127.0.0.1:8123"})
    autoscaling._stats = lambda: {
        "fixed": replace(stats("fixed", time.monotonic(), 0.0, 3), busy_replicas=busy)
    }
    annotations = {"serving.kserve.io/autoscalerClass": "none"}
    replicas = RevisionReplicasLike("fixed", {"minReplicas": 3, "scalingAnnotations": annotations})
    autoscaling.start_scaling(replicas, lambda: None)
    autoscaling.cap(replicas, 1)
    autoscaling.cap(replicas, None)
    assert replicas.counts == [3, 1, 3]
    assert replicas.busy == [frozenset(), busy, frozenset()]  # scaling down spares the busy ones
