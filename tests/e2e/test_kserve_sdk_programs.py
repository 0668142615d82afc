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

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

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


def platform_samples(platform: PlatformProcess, service: str) -> list[tuple[str, dict, float]]:
    """The samples of a service's replicas on the platform's /metrics, parsed by prometheus_client."""
    answer = httpx.get(platform.api_url + "/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.labels.get("inferenceservice") == service
    ]


def values(samples: list[tuple[str, dict, float]], name: str, **labels) -> list[float]:
    """The values of the samples of this name with these labels (whatever their others), one per sample."""
    return [value for (sample, own, value) in samples if sample == name and labels.items() <= own.items()]


def test_a_batcher_in_front_of_a_kserve_sdk_predictor_stacks_concurrent_requests(platform):
    # KServe's SDK does not batch: the platform starts `modelplane batcher` in front of it, as KServe
    # starts its agent sidecar. A latency of a minute: the four requests go once they fill a batch.
    # The service asks to be scraped: the platform's /metrics has the sidecar's metrics with the program's.
    model = [{"name": "STORAGE_URI", "value": "pvc://models/linear"}]
    predictor = container("predictor", "--model_name=batched", "--model_dir=/mnt/models", env=model)
    platform.apply(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": "batched",
                "annotations": {"serving.kserve.io/enable-prometheus-scraping": "true"},
            },
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

    def scraped_together(calls: float):
        """Four requests more, one batch: on the platform's /metrics, the sidecar's own metrics (served
        with the program's) count four requests and instances more, and the program's own samples
        appear once, with `calls` model calls."""
        metrics = predict_together()
        scraped = platform_samples(platform, "batched")
        batched = {"model_name": "batched", "component": "predictor", "replica": "0"}
        assert values(scraped, "modelplane_batcher_requests_total", **batched) == [4 * calls]
        assert values(scraped, "modelplane_batcher_batch_size_sum", **batched) == [4 * calls]
        assert values(scraped, "request_predict_seconds_count", **batched) == [calls]
        assert values(scraped, "modelplane_scrape_up") == [1.0]
        return metrics

    assert values(platform_samples(platform, "batched"), "modelplane_batcher_requests_total") == []

    assert 'request_predict_seconds_count{model_name="batched"} 1.0' in scraped_together(1.0)
    # A restart in place hands the sidecar over with its replica: the same one batches on (its counts go
    # on from four), and is scraped on.
    platform.process.send_signal(signal.SIGHUP)
    assert platform.process.stdout.readline().startswith("modelplane is up: ")
    assert 'request_predict_seconds_count{model_name="batched"} 2.0' in scraped_together(2.0)
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
