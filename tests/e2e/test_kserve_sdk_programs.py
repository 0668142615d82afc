"""Programs written with KServe's SDK (the `kserve` package, in the virtualenv scripts/setup-dev.sh
makes) run on `modelplane up` as a KServe user writes them: a custom predictor reading its model from
`--model_dir=/mnt/models`, and a transformer in front of it that reaches it over gRPC at the
`--predictor_host` it is given, told `--predictor_use_ssl=true` as it would be behind TLS in a cluster."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, running_platform, wait_until

KSERVE_PYTHON = REPO_ROOT / ".venvs" / "kserve-sdk" / "bin" / "python"
PROGRAMS = Path(__file__).parent


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    if not KSERVE_PYTHON.exists():
        pytest.fail(
            f"KServe's SDK is not installed in {KSERVE_PYTHON.parent.parent}: run scripts/setup-dev.sh"
        )
    home = tmp_path_factory.mktemp("mp-kserve-sdk")
    model = home / "pvc" / "models" / "linear"
    model.mkdir(parents=True)
    (model / "weights.json").write_text(json.dumps([1, 2, 3, 4]))
    with running_platform(home) as running:
        yield running


def container(program: str, *args: str, **fields) -> dict:
    return {
        "name": "kserve-container",
        "image": f"registry.example/{program}:latest",
        "command": [str(KSERVE_PYTHON), str(PROGRAMS / f"kserve_sdk_{program}.py")],
        "args": list(args),
        **fields,
    }


def test_a_kserve_sdk_transformer_reaches_a_kserve_sdk_predictor_over_grpc(platform):
    transformer = container("transformer", "--predictor_protocol=grpc-v2", "--predictor_use_ssl=true")
    model = [{"name": "STORAGE_URI", "value": "pvc://models/linear"}]
    predictor = container("predictor", "--model_name=linear", "--model_dir=/mnt/models", env=model)
    platform.apply(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "linear"},
            "spec": {"transformer": {"containers": [transformer]}, "predictor": {"containers": [predictor]}},
        }
    )
    platform.cli("wait", "--for=condition=Ready", "isvc/linear", "--timeout=240s")
    millimetres = {"instances": [[10, 20, 30, 40]]}
    answer = platform.request(
        "POST", "linear.default.localhost", "/v1/models/linear:predict", json=millimetres
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [30.0]}  # 1*1 + 2*2 + 3*3 + 4*4, in centimetres
    wrong = platform.request(
        "POST", "linear-predictor.default.localhost", "/v1/models/linear:predict", json={"instances": [[1]]}
    )
    assert (wrong.status_code, wrong.json()) == (400, {"error": "each row has 4 features"})
    log = platform.cli("logs", "linear", "-c", "transformer").stdout
    assert "so the program is told --predictor_use_ssl=false" in log


def test_a_batcher_in_front_of_a_kserve_sdk_predictor_stacks_concurrent_requests(platform):
    # KServe's SDK does not batch: the platform starts `modelplane batcher` in front of it, as KServe
    # starts its agent sidecar. A latency of a minute: the four requests go once they fill a batch.
    model = [{"name": "STORAGE_URI", "value": "pvc://models/linear"}]
    predictor = container("predictor", "--model_name=batched", "--model_dir=/mnt/models", env=model)
    platform.apply(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "batched"},
            "spec": {
                "predictor": {"containers": [predictor], "batcher": {"maxBatchSize": 4, "maxLatency": 60000}}
            },
        }
    )
    platform.cli("wait", "--for=condition=Ready", "isvc/batched", "--timeout=240s")
    rows = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]

    def predict(row):
        path = "/v1/models/batched:predict"
        return platform.request("POST", "batched.default.localhost", path, json={"instances": [row]})

    def predict_together():
        with ThreadPoolExecutor(len(rows)) as pool:
            answers = list(pool.map(predict, rows))
        assert [(a.status_code, a.json()) for a in answers] == [
            (200, {"predictions": [weight]}) for weight in (1.0, 2.0, 3.0, 4.0)
        ]
        # The program's own metrics (passed through by the sidecar): one more predict call, of four rows.
        return platform.request("GET", "batched.default.localhost", "/metrics").text

    assert 'request_predict_seconds_count{model_name="batched"} 1.0' in predict_together()
    # A restart in place hands the sidecar over with its replica: the same one batches on.
    platform.process.send_signal(signal.SIGHUP)
    assert platform.process.stdout.readline().startswith("modelplane is up: ")
    assert 'request_predict_seconds_count{model_name="batched"} 2.0' in predict_together()
    # A request the sidecar does not batch reaches the program as it is, and its answer comes back.
    wrong = platform.request(
        "POST", "batched.default.localhost", "/v1/models/batched:predict", json={"inputs": [[1]]}
    )
    assert wrong.status_code == 400, wrong.text
    log = platform.cli("logs", "batched", "-c", "predictor").stdout
    assert log.count("batcher sidecar started") == 1 and "taken back after a restart" in log
    platform.cli("delete", "isvc", "batched")
    # The sidecar lives and dies with its replica.
    [replica_log] = (platform.home / "logs" / "default" / "batched" / "predictor").glob("*.log")
    wait_until(lambda: "batcher sidecar stopped" in replica_log.read_text(), "the sidecar to stop", platform)
