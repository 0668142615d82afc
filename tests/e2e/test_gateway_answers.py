"""End to end: what the gateway of `modelplane up` answers for a service that does not serve."""

from __future__ import annotations

import json

import grpc
import pytest

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.e2e.platform_process import PlatformProcess, running_platform, wait_until

CRASHING = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "crashing", "namespace": "default"},
    "spec": {
        "predictor": {
            "containers": [
                {
                    "name": "kserve-container",
                    "image": "modelplane:latest",
                    "command": ["python", "-c", "print('no weights in /mnt/models'); raise SystemExit(3)"],
                }
            ]
        }
    },
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("mp-home")
    with running_platform(home) as platform:
        yield platform


def failed(platform: PlatformProcess, name: str):
    status = json.loads(platform.cli("get", "isvc", name, "-o", "json").stdout).get("status") or {}
    return (status.get("modelStatus") or {}).get("lastFailureInfo")


def test_a_crashing_predictor_answers_503_with_why(platform):
    platform.apply(CRASHING)
    wait_until(lambda: failed(platform, "crashing"), "the predictor to fail", platform)
    for host in ("crashing.default.localhost", "crashing-predictor.default.localhost"):
        response = platform.request("POST", host, "/v1/models/crashing:predict", json={"instances": [[1]]})
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert "InferenceService default/crashing" in error and "no weights in /mnt/models" in error
    address = platform.gateway_url.removeprefix("http://")
    options = [("grpc.default_authority", "crashing.default.localhost")]
    with grpc.insecure_channel(address, options=options) as channel, pytest.raises(grpc.RpcError) as error:
        InferenceStub(channel).ModelInfer(pb.ModelInferRequest(model_name="crashing"), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no weights in /mnt/models" in error.value.details()


def test_a_missing_runtime_answers_503_with_why(platform):
    missing = {
        **CRASHING,
        "metadata": {"name": "runtimeless", "namespace": "default"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "runtime": "no-such-runtime"}}},
    }
    platform.apply(missing)
    wait_until(lambda: failed(platform, "runtimeless"), "the invalid spec to be reported", platform)
    response = platform.request("GET", "runtimeless.default.localhost", "/v1/models/runtimeless")
    assert response.status_code == 503
    assert "no-such-runtime" in response.json()["error"]


def test_a_deleted_service_is_a_404(platform):
    platform.cli("delete", "isvc", "runtimeless")

    def gone():
        response = platform.request("GET", "runtimeless.default.localhost", "/v1/models/runtimeless")
        return response if response.status_code == 404 else None

    assert "no InferenceService or InferenceGraph serves host" in wait_until(gone, "a 404", platform).text
