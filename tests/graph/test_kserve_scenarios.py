"""KServe's InferenceGraph e2e scenarios and router unit-test graphs, against stub services.

The success step stands for KServe's `success-200-isvc`, the error step for `error-404-isvc`.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from conftest import graph, sequence

CUSTOM_INPUT = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
SUCCESS = {"predictions": [{"message": "SUCCESS"}]}
ERROR = {"detail": "Intentional 404 code"}
NO_MATCH = {
    "error": "Failed to process request",
    "cause": "None of the routes matched with the switch condition",
}


def picker(decision: str) -> dict:
    return {"decision_picker": decision, "key1": {"name": "abc"}}


def reply(stub, body: object, status: int = 200) -> str:
    return stub.at(f"/reply?status={status}&body={quote(json.dumps(body))}")


def test_scenario1_soft_success_then_error_answers_the_error(stub, start_router):
    router = start_router(
        graph(
            sequence(
                {"name": "rootStep1", "serviceUrl": stub.at("/success")},
                {"name": "rootStep2", "serviceUrl": stub.at("/error"), "data": "$request"},
            )
        )
    )
    response = router.post(CUSTOM_INPUT)
    assert response.status_code == 404
    assert response.json() == ERROR


def test_scenario2_soft_error_then_success_answers_success(stub, start_router):
    router = start_router(
        graph(
            sequence(
                {"name": "rootStep1", "serviceUrl": stub.at("/error")},
                {"name": "rootStep2", "serviceUrl": stub.at("/success"), "data": "$request"},
            )
        )
    )
    response = router.post(CUSTOM_INPUT)
    assert response.status_code == 200
    assert response.json() == SUCCESS


def test_scenario3_hard_error_stops_the_sequence(stub, start_router):
    router = start_router(
        graph(
            sequence(
                {"name": "rootStep1", "serviceUrl": stub.at("/error"), "dependency": "Hard"},
                {"name": "rootStep2", "serviceUrl": stub.at("/success"), "dependency": "Soft"},
            )
        )
    )
    response = router.post(CUSTOM_INPUT)
    assert response.status_code == 404
    assert response.json() == ERROR
    assert [r["path"] for r in stub.requests()] == ["/error"]


def test_scenario4_switch_picks_by_condition_and_404s_on_no_match(stub, start_router):
    root = {
        "routerType": "Switch",
        "steps": [
            {
                "name": "rootStep1",
                "serviceUrl": stub.at("/error"),
                "condition": "[@this].#(decision_picker==ERROR)",
                "dependency": "Soft",
            },
            {
                "name": "rootStep2",
                "serviceUrl": stub.at("/success"),
                "condition": "[@this].#(decision_picker==SUCCESS)",
                "dependency": "Soft",
            },
        ],
    }
    router = start_router(graph(root))

    error = router.post(picker("ERROR"))
    assert (error.status_code, error.json()) == (404, ERROR)
    success = router.post(picker("SUCCESS"))
    assert (success.status_code, success.json()) == (200, SUCCESS)
    no_match = router.post(picker("NO_MATCH"))
    assert (no_match.status_code, no_match.json()) == (404, NO_MATCH)
    assert no_match.headers["content-type"] == "application/json"


def _switch_under_sequence(stub, dependency: str) -> dict:
    node1 = {
        "routerType": "Switch",
        "steps": [
            {
                "name": "node1Step1",
                "serviceUrl": stub.at("/error"),
                "condition": "[@this].#(decision_picker==ERROR)",
                "dependency": dependency,
            }
        ],
    }
    root = sequence(
        {"name": "rootStep1", "nodeName": "node1", "dependency": dependency},
        {"name": "rootStep2", "serviceUrl": stub.at("/success")},
    )
    return graph(root, node1=node1)


def test_scenario5_soft_switch_failure_is_skipped(stub, start_router):
    router = start_router(_switch_under_sequence(stub, "Soft"))
    response = router.post(picker("ERROR"))
    assert (response.status_code, response.json()) == (200, SUCCESS)
    # rootStep2 has no data, so it gets the graph's input, not the error.
    assert json.loads(stub.requests()[-1]["body"]) == picker("ERROR")


def test_scenario6_hard_switch_failure_stops_the_sequence(stub, start_router):
    router = start_router(_switch_under_sequence(stub, "Hard"))
    response = router.post(picker("ERROR"))
    assert (response.status_code, response.json()) == (404, ERROR)


def test_scenario7_ensemble_includes_soft_failures(stub, start_router):
    root = {
        "routerType": "Ensemble",
        "steps": [
            {"name": "rootStep1", "serviceUrl": stub.at("/success")},
            {"name": "rootStep2", "serviceUrl": stub.at("/error")},
        ],
    }
    router = start_router(graph(root))
    response = router.post(picker("SUCCESS"))
    assert response.status_code == 200
    assert response.json() == {"rootStep1": SUCCESS, "rootStep2": ERROR}


def test_scenario8_ensemble_hard_failure_decides(stub, start_router):
    root = {
        "routerType": "Ensemble",
        "steps": [
            {"name": "rootStep1", "serviceUrl": stub.at("/error"), "dependency": "Hard"},
            {"name": "rootStep2", "serviceUrl": stub.at("/success")},
            {"name": "rootStep3", "serviceUrl": stub.at("/success")},
        ],
    }
    router = start_router(graph(root))
    response = router.post(picker("SUCCESS"))
    assert (response.status_code, response.json()) == (404, ERROR)


def _splitter_under_sequence(stub, dependency: str) -> dict:
    node1 = {
        "routerType": "Splitter",
        "steps": [
            {
                "name": "node1Step1",
                "weight": 100,
                "serviceUrl": stub.at("/error"),
                "condition": "[@this].#(decision_picker==ERROR)",
            }
        ],
    }
    root = sequence(
        {"name": "rootStep1", "nodeName": "node1", "dependency": dependency},
        {"name": "rootStep2", "serviceUrl": stub.at("/success")},
    )
    return graph(root, node1=node1)


def test_scenario9_soft_splitter_failure_is_skipped(stub, start_router):
    router = start_router(_splitter_under_sequence(stub, "Soft"))
    response = router.post(CUSTOM_INPUT)
    assert (response.status_code, response.json()) == (200, SUCCESS)


def test_scenario10_hard_splitter_failure_stops_the_sequence(stub, start_router):
    router = start_router(_splitter_under_sequence(stub, "Hard"))
    response = router.post(CUSTOM_INPUT)
    assert (response.status_code, response.json()) == (404, ERROR)


def test_model_chainer_three_hard_steps(stub, start_router):
    """`test_inference_graph`: sklearn -> xgboost -> sklearn, all Hard, the last answer wins."""
    router = start_router(
        graph(
            sequence(
                {"serviceUrl": reply(stub, {"predictions": [0, 0]}), "dependency": "Hard"},
                {
                    "serviceUrl": reply(stub, {"predictions": [2, 2]}),
                    "data": "$request",
                    "dependency": "Hard",
                },
                {
                    "serviceUrl": reply(stub, {"predictions": [1, 1]}),
                    "data": "$request",
                    "dependency": "Hard",
                },
            )
        )
    )
    response = router.post(CUSTOM_INPUT)
    assert response.status_code == 200
    assert response.json()["predictions"] == [1, 1]
    assert [json.loads(r["body"]) for r in stub.requests()] == [CUSTOM_INPUT] * 3


def test_simple_model_chainer_maps_predictions_to_instances(stub, start_router):
    router = start_router(
        graph(
            sequence(
                {"name": "model1", "serviceUrl": stub.at("/echo"), "mapPredictionsToInstances": True},
                {"name": "model2", "serviceUrl": reply(stub, {"predictions": "2"}), "data": "$response"},
            )
        )
    )
    response = router.post({"predictions": ["test", "test2"]})
    assert (response.status_code, response.json()) == (200, {"predictions": "2"})
    model1, model2 = (json.loads(r["body"]) for r in stub.requests())
    assert model1 == {"instances": ["test", "test2"]}
    assert model2 == {"instances": ["test", "test2"]}  # model1's answer (an echo)


def test_simple_model_ensemble(stub, start_router):
    root = {
        "routerType": "Ensemble",
        "steps": [
            {"name": "model1", "serviceUrl": reply(stub, {"predictions": "1"})},
            {"name": "model2", "serviceUrl": reply(stub, {"predictions": "2"})},
        ],
    }
    router = start_router(graph(root))
    assert router.post({"instances": [1]}).json() == {
        "model1": {"predictions": "1"},
        "model2": {"predictions": "2"},
    }


def test_graph_with_conditions(stub, start_router):
    """TestInferenceGraphWithCondition: a Switch picks a model, a conditional Ensemble follows."""
    animal = {
        "routerType": "Switch",
        "steps": [
            {
                "serviceUrl": reply(stub, {"predictions": [{"label": "cat"}]}),
                "condition": 'instances.#(modelId=="1")',
            },
            {
                "serviceUrl": reply(stub, {"predictions": [{"label": "dog"}]}),
                "condition": 'instances.#(modelId=="2")',
            },
        ],
    }
    breed = {
        "routerType": "Ensemble",
        "steps": [
            {"name": "model3", "serviceUrl": reply(stub, {"predictions": [{"breed": "beagle"}]})},
            {"name": "model4", "serviceUrl": reply(stub, {"predictions": [{"breed": "poodle"}]})},
        ],
    }
    root = sequence(
        {"name": "step1", "nodeName": "animal-categorize"},
        {"name": "step2", "nodeName": "breed-categorize", "condition": 'predictions.#(label=="dog")'},
    )
    router = start_router(graph(root, **{"animal-categorize": animal, "breed-categorize": breed}))

    dog = router.post({"instances": [{"modelId": "2"}]})
    assert dog.status_code == 200
    assert dog.json() == {
        "model3": {"predictions": [{"breed": "beagle"}]},
        "model4": {"predictions": [{"breed": "poodle"}]},
    }
    # The Ensemble got the graph's input (step2 has no data), not the Switch's answer.
    assert {r["body"] for r in stub.requests()[1:]} == {json.dumps({"instances": [{"modelId": "2"}]})}

    cat = router.post({"instances": [{"modelId": "1"}]})
    assert (cat.status_code, cat.json()) == (200, {"predictions": [{"label": "cat"}]})


def test_unmet_sequence_condition_answers_the_previous_response_with_200(stub, start_router):
    router = start_router(
        graph(
            sequence(
                {"serviceUrl": reply(stub, {"predictions": [{"label": "cat"}]}, status=404)},
                {"serviceUrl": "http://dummy", "condition": 'predictions.#(label=="dog")'},
            )
        )
    )
    response = router.post({"instances": [1]})
    assert (response.status_code, response.json()) == (200, {"predictions": [{"label": "cat"}]})
