"""The router's graph and the status of an InferenceGraph, from the graph and its services."""

from __future__ import annotations

from modelplane.control.graph_plan import graph_plan, inference_graph_status, stopped_graph_status

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"


def isvc(name: str, *, ready: bool = True, predictor: dict | None = None, transformer: dict | None = None):
    spec = {"predictor": predictor or {"model": {"modelFormat": {"name": "sklearn"}}}}
    if transformer:
        spec["transformer"] = transformer
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ready:
        status["url"] = f"http://{name}.default.localhost:8080"
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec, "status": status}


def graph(*steps: dict) -> dict:
    return {
        "metadata": {"name": "chain", "namespace": "default", "generation": 3},
        "spec": {"nodes": {"root": {"routerType": "Sequence", "steps": list(steps)}}},
    }


def urls(plan) -> list[str | None]:
    return [step.get("serviceUrl") for step in plan.graph["nodes"]["root"]["steps"]]


def test_each_service_name_becomes_the_url_of_its_predictor_endpoint():
    services = {
        "sklearn": isvc("sklearn"),
        "xgb": isvc(
            "xgb", predictor={"model": {"modelFormat": {"name": "xgboost"}, "protocolVersion": "v2"}}
        ),
        "named": isvc("named", predictor={"model": {"args": ["--model_name", "iris"]}}),
        "custom": isvc("custom", predictor={"containers": [{"args": ["--model-name=mine"]}]}),
    }
    ig = graph(
        {"serviceName": "sklearn"},
        {"serviceName": "xgb"},
        {"serviceName": "named"},
        {"serviceName": "custom"},
        {"serviceUrl": "http://elsewhere/"},
    )
    plan = graph_plan(ig, services)
    assert plan.services_ready
    assert urls(plan) == [
        "http://sklearn.default.localhost:8080/v1/models/sklearn:predict",
        "http://xgb.default.localhost:8080/v2/models/xgb/infer",
        "http://named.default.localhost:8080/v1/models/iris:predict",
        "http://custom.default.localhost:8080/v1/models/mine:predict",
        "http://elsewhere/",
    ]
    assert "serviceUrl" not in ig["spec"]["nodes"]["root"]["steps"][0], "the spec itself is not changed"


def test_a_transformer_sets_the_protocol_and_its_model_name_comes_first():
    services = {
        "t": isvc(
            "t",
            predictor={"model": {"args": ["--model_name=inner"], "protocolVersion": "v2"}},
            transformer={"containers": [{"args": ["--model_name", "outer"]}]},
        )
    }
    assert urls(graph_plan(graph({"serviceName": "t"}), services)) == [
        "http://t.default.localhost:8080/v1/models/outer:predict"
    ]


def test_a_named_runtime_s_protocols_decide_when_the_service_names_none():
    def uses(runtime: str, **model) -> dict:
        return isvc(
            runtime, predictor={"model": {"modelFormat": {"name": "sklearn"}, "runtime": runtime, **model}}
        )

    runtimes = {
        "v2-only": {"protocolVersions": ["v2"]},
        "both": {"protocolVersions": ["grpc-v2", "v1", "v2"]},
    }
    services = {
        "v2-only": uses("v2-only"),
        "both": uses("both"),
        "v2-asked": isvc("v2-asked", predictor={"model": {"runtime": "both", "protocolVersion": "v2"}}),
    }
    ig = graph({"serviceName": "v2-only"}, {"serviceName": "both"}, {"serviceName": "v2-asked"})
    assert urls(graph_plan(ig, services, runtimes=runtimes)) == [
        "http://v2-only.default.localhost:8080/v2/models/v2-only/infer",
        "http://both.default.localhost:8080/v1/models/both:predict",
        # KServe would take the runtime's first (v1) over what the service asks for.
        "http://v2-asked.default.localhost:8080/v2/models/v2-asked/infer",
    ]
    grpc_only = {"grpc": uses("grpc")}
    plan = graph_plan(
        graph({"serviceName": "grpc"}), grpc_only, runtimes={"grpc": {"protocolVersions": ["grpc-v2"]}}
    )
    assert plan.waiting == (
        "service grpc: its runtime grpc speaks grpc-v2, none of which (v1, v2) a graph's router calls",
    )


def test_the_model_name_is_found_as_kserve_finds_it():
    mlserver = isvc(
        "m",
        predictor={
            "model": {
                "args": ["--model_name", "argname"],
                "env": [{"name": "MLSERVER_MODEL_NAME", "value": "mlsname"}],
            }
        },
    )
    twice = isvc("t", predictor={"model": {"args": ["--model_name", "first", "--model_name=second"]}})
    plan = graph_plan(graph({"serviceName": "m"}, {"serviceName": "t"}), {"m": mlserver, "t": twice})
    assert urls(plan) == [
        "http://m.default.localhost:8080/v1/models/mlsname:predict",
        "http://t.default.localhost:8080/v1/models/second:predict",
    ]


def test_a_graph_does_not_take_the_host_of_a_service():
    services = {"iris": isvc("iris", transformer={"containers": [{"image": "t"}]})}
    for name in ("iris", "iris-predictor", "iris-transformer"):
        ig = {**graph({"serviceName": "iris"}), "metadata": {"name": name, "namespace": "default"}}
        plan = graph_plan(ig, services)
        assert not plan.runnable
        status = inference_graph_status(ig, plan, router_ready=False, domain="localhost", port=8080, now=NOW)
        ready = status["conditions"][0]
        assert (ready["status"], ready["reason"]) == ("False", "HostConflict")
        assert ready["message"] == 'InferenceService "iris" serves at the host this graph\'s name would take'
    elsewhere = {
        **graph({"serviceName": "iris"}),
        "metadata": {"name": "iris-explainer", "namespace": "default"},
    }
    assert graph_plan(elsewhere, services).runnable


def test_a_graph_waits_for_missing_and_unready_services():
    plan = graph_plan(
        graph({"serviceName": "gone"}, {"serviceName": "slow"}), {"slow": isvc("slow", ready=False)}
    )
    assert not plan.services_ready
    assert plan.waiting == ("Failed to find graph service gone", "service slow is not ready")
    status = inference_graph_status(graph(), plan, router_ready=False, domain="localhost", port=8080, now=NOW)
    assert "url" not in status
    assert status["conditions"] == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "ServiceNotReady",
            "message": "Failed to find graph service gone; service slow is not ready",
            "lastTransitionTime": NOW,
        },
        {"type": "Stopped", "status": "False", "lastTransitionTime": NOW},
    ]


def test_a_graph_whose_router_serves_is_ready_at_its_own_host():
    ig = graph({"serviceName": "sklearn"})
    plan = graph_plan(ig, {"sklearn": isvc("sklearn")})
    starting = inference_graph_status(ig, plan, router_ready=False, domain="localhost", port=8080, now=NOW)
    assert starting["conditions"][0]["reason"] == "RouterNotReady"
    ready = inference_graph_status(
        ig, plan, router_ready=True, domain="localhost", port=8080, now=LATER, previous=starting
    )
    assert ready == {
        "observedGeneration": 3,
        "url": "http://chain.default.localhost:8080",
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": LATER},
            {"type": "Stopped", "status": "False", "lastTransitionTime": NOW},  # since it started
        ],
    }
    again = inference_graph_status(
        ig, plan, router_ready=True, domain="localhost", port=8080, now="x", previous=ready
    )
    assert again == ready


def test_a_graph_routed_as_in_knative_mode_has_the_knative_service_s_conditions():
    """KServe's Knative mode copies its Knative Service's conditions: ConfigurationsReady, Ready,
    RoutesReady, then appends Stopped."""
    ig = graph({"serviceName": "sklearn"})
    plan = graph_plan(ig, {"sklearn": isvc("sklearn")})

    def conditions(**state) -> list[tuple]:
        status = inference_graph_status(ig, plan, domain="localhost", port=8080, now=NOW, **state)
        return [(c["type"], c["status"], c.get("reason")) for c in status["conditions"]]

    assert conditions(router_ready=True, routed=True) == [
        ("ConfigurationsReady", "True", None),
        ("Ready", "True", None),
        ("RoutesReady", "True", None),
        ("Stopped", "False", None),
    ]
    assert conditions(router_ready=False, routed=False)[:3] == [
        ("ConfigurationsReady", "Unknown", "RevisionMissing"),
        ("Ready", "False", "RouterNotReady"),
        ("RoutesReady", "Unknown", "RevisionMissing"),
    ]
    # A new revision starting while the one before it serves; a new revision that failed.
    assert conditions(router_ready=False, routed=True)[2] == ("RoutesReady", "True", None)
    assert conditions(router_ready=False, router_failure="boom", routed=True)[:2] == [
        ("ConfigurationsReady", "False", "RevisionFailed"),
        ("Ready", "False", "RevisionFailed"),
    ]


def test_a_stopped_graph_is_not_ready():
    status = stopped_graph_status(graph(), now=NOW)
    assert [(c["type"], c["status"], c.get("reason")) for c in status["conditions"]] == [
        ("Ready", "False", "Stopped"),
        ("Stopped", "True", None),
    ]
    plan = graph_plan(graph({"serviceName": "sklearn"}), {"sklearn": isvc("sklearn")})
    started = inference_graph_status(
        graph(), plan, router_ready=True, domain="localhost", port=8080, now=LATER, previous=status
    )
    assert started["conditions"][1] == {"type": "Stopped", "status": "False", "lastTransitionTime": LATER}


def test_a_graph_whose_service_went_away_is_not_ready_though_its_router_runs():
    plan = graph_plan(graph({"serviceName": "gone"}), {})
    status = inference_graph_status(graph(), plan, router_ready=True, domain="localhost", port=8080, now=NOW)
    assert "url" not in status
    assert status["conditions"][0]["reason"] == "ServiceNotReady"


def test_a_router_that_fails_says_why():
    plan = graph_plan(graph(), {})
    status = inference_graph_status(
        graph(), plan, router_ready=False, router_failure="cannot run", domain="localhost", port=8080, now=NOW
    )
    assert status["conditions"][0] | {"lastTransitionTime": None} == {
        "type": "Ready",
        "status": "False",
        "reason": "RevisionFailed",
        "message": "cannot run",
        "lastTransitionTime": None,
    }


def test_a_router_that_cannot_start_says_why():
    plan = graph_plan(graph(), {})
    why = 'Revision "chain-router-00001" cannot start: needs 1 GPU (nvidia.com/gpu: 1), and this machine has no GPU.'
    status = inference_graph_status(
        graph(), plan, router_ready=False, router_unschedulable=why, domain="localhost", port=8080, now=NOW
    )
    assert status["conditions"][0] | {"lastTransitionTime": None} == {
        "type": "Ready",
        "status": "False",
        "reason": "Unschedulable",
        "message": why,
        "lastTransitionTime": None,
    }


def test_a_service_url_written_for_a_cluster_goes_to_the_gateway():
    ig = graph(
        {"serviceUrl": "http://llm.default.localhost/openai/v1/completions"},
        {"serviceUrl": "http://llm-predictor.team.svc.cluster.local/openai/v1/chat/completions?x=1"},
        {"serviceUrl": "http://llm.default.svc/v1/models/llm:predict"},
        {"serviceUrl": "http://llm.default.localhost:9000/openai/v1/completions"},
        {"serviceUrl": "https://llm.default.localhost/openai/v1/completions"},
        {"serviceUrl": "http://example.com/predict"},
        {"serviceUrl": "http://a.b.c.localhost/predict"},
    )
    assert urls(graph_plan(ig, {}, domain="localhost", port=8123)) == [
        "http://llm.default.localhost:8123/openai/v1/completions",
        "http://llm-predictor.team.localhost:8123/openai/v1/chat/completions?x=1",
        "http://llm.default.localhost:8123/v1/models/llm:predict",
        "http://llm.default.localhost:9000/openai/v1/completions",  # a port of its own: as written
        "https://llm.default.localhost/openai/v1/completions",
        "http://example.com/predict",
        "http://a.b.c.localhost/predict",
    ]
    assert urls(graph_plan(ig, {}))[0] == "http://llm.default.localhost/openai/v1/completions"
