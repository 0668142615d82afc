"""A rolling update's steps, as a Deployment's controller takes them."""

from __future__ import annotations

import pytest

from modelplane.control.rolling_update import (
    RollingUpdate,
    rolling_update_errors,
    rollout_step,
    rollout_targets,
)


def roll(update: RollingUpdate, total: int) -> list[tuple[int, int, int]]:
    """Steps until the rollout is done, every replica ready as soon as it runs: (old, new, new %)."""
    old, new = total, 0
    steps = []
    for _ in range(50):
        step = rollout_step(update, total, old, old, new, new)
        steps.append((step.old_replicas, step.new_replicas, step.new_percent))
        if step.done:
            return steps
        old, new = step.old_replicas, step.new_replicas
    raise AssertionError(f"the rollout never ended: {steps}")


def test_no_surge_one_unavailable_replaces_one_replica_at_a_time():
    steps = roll(RollingUpdate(0, 1), 3)
    assert all(old + new <= 3 for old, new, _ in steps)
    assert steps[0] == (2, 0, 0)
    assert steps[-1] == (0, 3, 100)


def test_one_surge_none_unavailable_never_goes_below_the_total():
    steps = roll(RollingUpdate(1, 0), 3)
    assert all(old + new <= 4 for old, new, _ in steps)
    olds = [old for old, _, _ in steps]
    assert olds == sorted(olds, reverse=True) and steps[-1] == (0, 3, 100)


def test_the_defaults_are_a_quarter_each_rounded_as_kubernetes_rounds():
    assert RollingUpdate().bounds(4) == (1, 1)
    assert RollingUpdate().bounds(2) == (1, 0)  # surge rounds up, unavailable down
    assert RollingUpdate(0, 0).bounds(2) == (0, 1)  # both zero: one may be unavailable
    assert RollingUpdate("50%", "100%").bounds(3) == (2, 3)


def test_requests_follow_the_ready_replicas():
    step = rollout_step(RollingUpdate(1, 0), 4, old=4, old_ready=4, new=1, new_ready=1)
    assert step.new_percent == 20
    assert [(t.revision, t.percent) for t in rollout_targets("v2", "v1", step)] == [("v2", 20), ("v1", 80)]
    waiting = rollout_step(RollingUpdate(1, 0), 4, old=4, old_ready=4, new=1, new_ready=0)
    assert [(t.revision, t.percent) for t in rollout_targets("v2", "v1", waiting)] == [("v1", 100)]


def test_replicas_of_the_old_revision_that_are_not_ready_go_first():
    step = rollout_step(RollingUpdate(0, 1), 3, old=3, old_ready=1, new=0, new_ready=0)
    assert (
        step.old_replicas == 1
    )  # its two unready replicas go; the ready one stays, as one may be unavailable


def test_a_new_revision_that_never_gets_ready_stops_the_rollout_where_it_is():
    update = RollingUpdate(0, 1)
    old, new = 3, 0
    for _ in range(10):
        step = rollout_step(update, 3, old, old, new, 0)
        old, new = step.old_replicas, step.new_replicas
    assert (old, new) == (2, 1) and not step.done


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"deploymentStrategy": {"rollingUpdate": {"maxSurge": 0}}}, RollingUpdate(0, "25%")),
        ({"deploymentStrategy": {"type": "RollingUpdate", "rollingUpdate": {}}}, RollingUpdate()),
        ({"deploymentStrategy": {"type": "Recreate"}}, None),
        ({"deploymentStrategy": {"type": "RollingUpdate"}}, None),  # modelplane up's own rollout
        ({}, None),
    ],
)
def test_which_components_roll(spec, expected):
    assert RollingUpdate.of(spec) == expected


def test_what_a_deployment_refuses_in_a_rolling_update():
    def errors(strategy: dict) -> list[str]:
        isvc = {"spec": {"predictor": {"deploymentStrategy": strategy}}}
        return [f"{error.path}: {error.message}" for error in rolling_update_errors(isvc)]

    here = "spec.predictor.deploymentStrategy.rollingUpdate"
    assert errors({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}) == [
        f"{here}: Forbidden: may not be specified when strategy `type` is 'Recreate'"
    ]
    assert errors({"rollingUpdate": {"maxSurge": -1, "maxUnavailable": "150%"}}) == [
        f"{here}.maxSurge: Invalid value: -1: must be greater than or equal to 0",
        f'{here}.maxUnavailable: Invalid value: "150%": must not be greater than 100%',
    ]
    assert errors({"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}}) == [
        f"{here}.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
    ]
    assert errors({"rollingUpdate": {"maxSurge": "10%"}}) == []
