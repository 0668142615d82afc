"""A transformer written without modelplane (plain Python, as a KServe SDK program is) reaches its
predictor by the name `modelplane up` gives it, `<isvc>-predictor.<namespace>.localhost`, on a machine
whose resolver does not know names under localhost (glibc alone): the replica's startup hook resolves
them to the loopback, with no entry in /etc/hosts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from tests.e2e.platform_process import PlatformProcess, running_platform, write_iris_models

TRANSFORMER = Path(__file__).with_name("plain_transformer.py")


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    home = tmp_path_factory.mktemp("mp-plain-transformer")
    write_iris_models({home / "pvc" / "models" / "iris": LogisticRegression(max_iter=500)})
    with running_platform(home) as running:
        yield running


def test_a_plain_python_transformer_reaches_its_predictor_by_its_localhost_name(platform):
    container = {
        "name": "kserve-container",
        "image": "plain-transformer:latest",
        "command": ["python", str(TRANSFORMER)],
    }
    platform.apply(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "iris-mm"},
            "spec": {
                "transformer": {"containers": [container]},
                "predictor": {"sklearn": {"storageUri": "pvc://models/iris"}},
            },
        }
    )
    platform.cli("wait", "--for=condition=Ready", "isvc/iris-mm", "--timeout=240s")
    millimetres = {"instances": [[68, 28, 48, 14], [60, 34, 45, 16]]}
    answer = platform.request(
        "POST", "iris-mm.default.localhost", "/v1/models/iris-mm:predict", json=millimetres
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [1, 1]}
    log = platform.cli("logs", "iris-mm", "-c", "transformer").stdout
    assert "/etc/hosts" not in log


def test_a_transformer_told_its_predictor_by_name_alone_reaches_the_one_in_its_namespace(platform):
    """`--predictor_host iris-predictor`, as KServe's docs write it: a pod's DNS search path finds the
    Service in the pod's own namespace, and so does the replica here."""
    container = {
        "name": "kserve-container",
        "image": "plain-transformer:latest",
        "command": ["python", str(TRANSFORMER)],
        "args": ["--predictor_host", "bare-predictor"],
    }
    platform.apply(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "bare", "namespace": "team-a"},
            "spec": {
                "transformer": {"containers": [container]},
                "predictor": {"sklearn": {"storageUri": "pvc://models/iris"}},
            },
        }
    )
    platform.cli("wait", "-n", "team-a", "--for=condition=Ready", "isvc/bare", "--timeout=240s")
    millimetres = {"instances": [[68, 28, 48, 14]]}
    answer = platform.request("POST", "bare.team-a.localhost", "/v1/models/bare:predict", json=millimetres)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [1]}
