"""TF Serving's `:classify` and `:regress` through the gateway to a service with a transformer: the
transformer's preprocess, then its predictor's verb of the same name, then its postprocess, as for
`:predict`."""

from __future__ import annotations

import pytest

from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, running_platform

MODELS = REPO_ROOT / "tests" / "server" / "example_verbs.py"


def container(model_class: str) -> dict:
    return {
        "name": "kserve-container",
        "image": "modelplane:latest",
        "command": ["modelplane", "serve", f"--model-class={MODELS}:{model_class}", "--http-port=8080"],
    }


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with running_platform(tmp_path_factory.mktemp("mp-example-verbs")) as running:
        predictor = container("ExampleVerbs")
        predictor["command"].append("--model-name=census")
        running.apply(
            {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": {"name": "census"},
                "spec": {
                    "transformer": {"containers": [container("TimesTen")]},
                    "predictor": {"containers": [predictor]},
                },
            }
        )
        running.cli("wait", "--for=condition=Ready", "isvc/census", "--timeout=240s")
        yield running


@pytest.mark.parametrize(
    ("verb", "results"),
    [("classify", [[["x", 10.0]], [["x", 20.0]]]), ("regress", [10.0, 20.0])],
)
def test_a_transformer_passes_an_example_verb_on_to_its_predictor(platform: PlatformProcess, verb, results):
    body = {"examples": [{"x": 1}, {"x": 2}]}
    answer = platform.request("POST", "census.default.localhost", f"/v1/models/census:{verb}", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"results": results, "via": "transformer"}
