"""End to end: `modelplane up --auth-token-file FILE --gateway-auth --tls-cert FILE --tls-key FILE`. The
gateway takes TLS and the token, REST and gRPC, through to real replicas; a transformer still reaches its
predictor (on the gateway's loopback port for the replicas); the status URLs say https."""

from __future__ import annotations

import json
import shutil
import ssl
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
from sklearn.linear_model import LogisticRegression

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, kill_leftovers, write_iris_models
from tests.local.certificates import write_certificates

TOKEN = "the-platform-token-0123456789abcdef"
BEARER = {"authorization": f"Bearer {TOKEN}"}


class SecuredPlatform(PlatformProcess):
    def __init__(self, home, ca, *options: str):
        super().__init__(home, *options)
        self.ca = ca

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "MODELPLANE_TOKEN": TOKEN, "MODELPLANE_CA": str(self.ca)}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mp-edge")
    ca, cert, key = write_certificates(folder)
    (folder / "token").write_text(TOKEN)
    home = folder / "home"
    write_iris_models({home / "pvc" / "examples" / "sklearn-iris": LogisticRegression(max_iter=1000)})
    (home / "pvc" / "examples" / "transformer").mkdir(parents=True)
    shutil.copy(
        REPO_ROOT / "examples" / "transformer" / "transformer.py", home / "pvc" / "examples" / "transformer"
    )
    options = ["--auth-token-file", str(folder / "token"), "--gateway-auth"]
    options += ["--tls-cert", str(cert), "--tls-key", str(key)]
    platform = SecuredPlatform(home, ca, *options).start()
    try:
        platform.cli("apply", "-f", str(REPO_ROOT / "examples" / "transformer-predictor.yaml"))
        platform.cli("wait", "--for=condition=Ready", "isvc/iris-mm", "--timeout=300s")
        yield platform
    finally:
        platform.stop()
        assert kill_leftovers(home) == [], "replicas outlived modelplane up"


def test_rest_over_tls_with_the_token_through_the_transformer(platform):
    port = urlsplit(platform.gateway_url).port
    assert platform.gateway_url.startswith("https://")
    status = json.loads(platform.cli("get", "isvc", "iris-mm", "-o", "json").stdout)["status"]
    assert status["url"] == f"https://iris-mm.default.localhost:{port}"
    url = f"https://localhost:{port}/v1/models/iris-mm:predict"
    verify = ssl.create_default_context(cafile=str(platform.ca))
    body = {"instances": [[68, 28, 48, 14]]}
    headers = {"host": "iris-mm.default.localhost"}
    assert httpx.post(url, json=body, headers=headers, verify=verify).status_code == 401
    answer = httpx.post(url, json=body, headers={**headers, **BEARER}, verify=verify, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [1]}


def test_grpc_over_tls_with_the_token_to_the_predictor(platform):
    port = urlsplit(platform.gateway_url).port
    credentials = grpc.ssl_channel_credentials(root_certificates=platform.ca.read_bytes())
    # The certificate names localhost; the authority routes the call.
    options = [
        ("grpc.default_authority", "iris-mm-predictor.default.localhost"),
        ("grpc.ssl_target_name_override", "localhost"),
    ]
    with grpc.secure_channel(f"localhost:{port}", credentials, options=options) as channel:
        request = pb.ModelInferRequest(model_name="iris-mm")
        tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[1, 4])
        tensor.contents.fp32_contents.extend([6.8, 2.8, 4.8, 1.4])
        with pytest.raises(grpc.RpcError) as error:
            InferenceStub(channel).ModelInfer(request, timeout=60)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        response = InferenceStub(channel).ModelInfer(request, metadata=tuple(BEARER.items()), timeout=60)
    output = response.outputs[0]
    assert list(output.contents.int64_contents or output.contents.int_contents) == [1]
