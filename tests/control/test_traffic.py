"""Traffic between a component's revisions: blue-green by default, canary with canaryTrafficPercent."""

from __future__ import annotations

from modelplane.control import TrafficTarget, rolled_out_after, traffic_targets

OLD, NEW = "iris-predictor-00001", "iris-predictor-00002"


def test_the_first_revision_gets_everything_once_ready():
    assert traffic_targets(OLD, False, None, None) == ()
    targets = traffic_targets(OLD, True, None, 10)  # a canary percentage means nothing on the first rollout
    assert targets == (TrafficTarget(OLD, 100, True),)
    assert rolled_out_after(targets, True, None) == OLD


def test_the_rolled_out_revision_keeps_the_traffic_until_the_new_one_is_ready():
    targets = traffic_targets(NEW, False, OLD, None)
    assert targets == (TrafficTarget(OLD, 100, False),)
    assert rolled_out_after(targets, False, OLD) == OLD


def test_without_a_canary_the_new_revision_takes_everything_and_is_rolled_out():
    targets = traffic_targets(NEW, True, OLD, None)
    assert targets == (TrafficTarget(NEW, 100, True),)
    assert rolled_out_after(targets, True, OLD) == NEW


def test_a_canary_splits_with_tags_and_rolls_nothing_out():
    targets = traffic_targets(NEW, True, OLD, 10)
    assert targets == (TrafficTarget(NEW, 10, True, "latest"), TrafficTarget(OLD, 90, False, "prev"))
    assert rolled_out_after(targets, True, OLD) == OLD


def test_zero_pins_the_previous_revision_and_a_hundred_promotes():
    assert traffic_targets(NEW, True, OLD, 0) == (
        TrafficTarget(NEW, 0, True, "latest"),
        TrafficTarget(OLD, 100, False, "prev"),
    )
    assert traffic_targets(NEW, True, OLD, 100) == (TrafficTarget(NEW, 100, True),)


def test_after_a_restart_the_rolled_out_revision_is_routed_while_it_loads():
    assert traffic_targets(OLD, False, OLD, None) == (TrafficTarget(OLD, 100, True),)


def test_tag_routing_tags_a_lone_latest_target_too():
    assert traffic_targets(NEW, True, OLD, None, tag_routing=True) == (
        TrafficTarget(NEW, 100, True, "latest"),
    )
    assert traffic_targets(OLD, True, None, None, tag_routing=True) == (
        TrafficTarget(OLD, 100, True, "latest"),
    )
    assert traffic_targets(NEW, True, OLD, 10, tag_routing=True) == (
        TrafficTarget(NEW, 10, True, "latest"),
        TrafficTarget(OLD, 90, False, "prev"),
    )


def test_a_revision_that_became_ready_keeps_its_traffic_while_it_wakes_from_zero():
    from modelplane.control.traffic import takes_traffic

    assert takes_traffic(ready_now=True, failed=False, was_ready=False)
    assert takes_traffic(ready_now=False, failed=False, was_ready=True)  # scaling 0 -> 1: the activator holds
    assert not takes_traffic(ready_now=False, failed=True, was_ready=True)  # failed since
    assert not takes_traffic(ready_now=False, failed=False, was_ready=False)  # never ready yet


def test_the_latest_target_follows_the_latest_ready_revision_while_a_newer_one_loads():
    from modelplane.control.traffic import latest_ready_revision

    newer = "iris-predictor-00003"
    # The newest is ready: it is the one.
    assert latest_ready_revision(newer, True, NEW, True) == newer
    # It loads, or failed: the canary that was ready keeps its share (Knative's latestRevision: true).
    assert latest_ready_revision(newer, False, NEW, True) == NEW
    assert traffic_targets(NEW, True, OLD, 20) == (
        TrafficTarget(NEW, 20, True, "latest"),
        TrafficTarget(OLD, 80, False, "prev"),
    )
    # That canary failed since, or there was none: nothing newer than the rolled-out one serves.
    assert latest_ready_revision(newer, False, NEW, False) is None
    assert latest_ready_revision(newer, False, None, False) is None


def test_a_percentage_after_a_full_rollout_rolls_back_to_the_previous_revision():
    # v2 rolled out over v1, then canaryTrafficPercent: 0 (KServe's PropagateStatus).
    targets = traffic_targets(NEW, True, NEW, 0, previous_rolled_out=OLD)
    assert targets == (TrafficTarget(NEW, 0, True, "latest"), TrafficTarget(OLD, 100, False, "prev"))
    assert rolled_out_after(targets, True, NEW) == OLD
    # Rolled back, the split stays; removing the percentage rolls the latest out again.
    assert traffic_targets(NEW, True, OLD, 0, previous_rolled_out=OLD) == targets
    assert traffic_targets(NEW, True, OLD, None, previous_rolled_out=OLD) == (TrafficTarget(NEW, 100, True),)
    # A share under 100 splits with the previous one too.
    assert traffic_targets(NEW, True, NEW, 30, previous_rolled_out=OLD) == (
        TrafficTarget(NEW, 30, True, "latest"),
        TrafficTarget(OLD, 70, False, "prev"),
    )
    # Nothing to roll back to, or the latest revision not ready: the latest keeps everything.
    assert traffic_targets(NEW, True, NEW, 0) == (TrafficTarget(NEW, 100, True),)
    assert traffic_targets(NEW, False, NEW, 0, previous_rolled_out=OLD) == (TrafficTarget(NEW, 100, True),)
