"""Programs written with KServe's SDK (the `kserve` package, in the virtualenv scripts/setup-dev.sh
makes) run on `modelplane up` as a KServe user writes them: a custom predictor reading its model from
`--model_dir=/mnt/models`, and a transformer in front of it that reaches it over gRPC at the
`--predictor_host` it is given, told `--predictor_use_ssl=true` as it would be behind TLS in a cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, running_platform

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
