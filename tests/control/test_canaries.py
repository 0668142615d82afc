"""Standard-mode canaries: the merged predictor, the fixed replica count, the traffic share."""

from __future__ import annotations

from modelplane.api import admit, builtin_cluster_runtimes
from modelplane.control.canaries import canary_plans, canary_replicas, merged, stable_share


def standard_isvc(*canaries: dict, stable_min: int | None = None) -> dict:
    predictor: dict = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://models/iris"}}
    if stable_min is not None:
        predictor["minReplicas"] = stable_min
    return admit(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": "cany",
                "namespace": "default",
                "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
            },
            "spec": {"predictor": predictor, "canary": list(canaries)},
        }
    )


def test_the_canary_is_laid_over_the_stable_predictor_as_kserve_merges():
    stable = {
        "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "a", "args": ["--x"]},
        "timeout": 30,
    }
    overlay = {"name": "v2", "model": {"storageUri": "b", "args": []}, "timeout": 0}
    assert merged(stable, overlay) == {
        "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "b", "args": ["--x"]},
        "timeout": 30,  # an empty value keeps the stable one
        "name": "v2",
    }


def test_a_canary_runs_its_own_minimum_or_its_share_of_the_stables():
    assert canary_replicas({"minReplicas": 4}, {}, 25) == 1
    assert canary_replicas({"minReplicas": 4}, {}, 60) == 3  # rounded up
    assert canary_replicas({}, {}, 20) == 1  # the stable minimum defaults to 1
    assert canary_replicas({"minReplicas": 4}, {"minReplicas": 2}, 10) == 2
    assert canary_replicas({"minReplicas": 4}, {}, 0) == 1  # a dark launch still runs


def test_plans_carry_a_fixed_count_and_the_canarys_model():
    isvc = standard_isvc(
        {"trafficPercent": 25, "predictor": {"name": "v2", "model": {"storageUri": "pvc://models/v2"}}},
        stable_min=4,
    )
    (plan,) = canary_plans(isvc, [], builtin_cluster_runtimes())
    assert (plan.name, plan.percent, plan.replicas, plan.problem) == ("v2", 25, 1, None)
    assert plan.component == "v2-predictor"
    assert plan.template["minReplicas"] == plan.template["maxReplicas"] == 1
    assert "pvc://models/v2" in str(plan.template)


def test_a_canary_written_with_a_framework_shorthand_runs_its_own_model():
    isvc = standard_isvc(
        {"trafficPercent": 25, "predictor": {"name": "v2", "sklearn": {"storageUri": "pvc://models/v2"}}}
    )
    (plan,) = canary_plans(isvc, [], builtin_cluster_runtimes())
    assert plan.template["storage"]["storageUri"] == "pvc://models/v2"


def test_a_canary_that_cannot_run_says_why():
    isvc = standard_isvc(
        {
            "trafficPercent": 10,
            "predictor": {"name": "v2", "model": {"modelFormat": {"name": "no-such-format"}}},
        }
    )
    (plan,) = canary_plans(isvc, [], builtin_cluster_runtimes())
    assert plan.template is None and plan.problem.startswith("No runtime found")


def test_the_stable_keeps_what_the_ready_canaries_do_not_take():
    assert stable_share([]) == 100
    assert stable_share([20, 30]) == 50
    assert stable_share([100]) == 0
