"""End to end on `modelplane up`: the seeds' dog-breed pipeline (two TorchServe model stores chained by
an InferenceGraph), applied as written but for storageUri, and a TorchScript program, through the gateway."""

from __future__ import annotations

import base64
import io
import sys

import pytest
from PIL import Image

from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, running_platform

sys.path.insert(0, str(REPO_ROOT / "examples"))
from pytorch_models import write_dog_breed_stores, write_torchscript  # noqa: E402


def picture(colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("mp-pytorch-home")
    claim = home / "pvc" / "examples"
    write_dog_breed_stores(claim)
    write_torchscript(claim / "torchscript-mlp")
    with running_platform(home) as platform:
        for example in ("dog-breed-pipeline.yaml", "torchscript-mlp.yaml"):
            platform.cli("apply", "-f", str(REPO_ROOT / "examples" / example))
        for resource in ("isvc/cat-dog-classifier", "isvc/dog-breed-classifier", "isvc/torchscript-mlp"):
            platform.cli("wait", "--for=condition=Ready", resource, "--timeout=300s")
        platform.cli("wait", "--for=condition=Ready", "ig/dog-breed-pipeline", "--timeout=300s")
        yield platform


def ask_the_pipeline(platform: PlatformProcess, colour: tuple[int, int, int]) -> dict:
    body = {"instances": [{"data": picture(colour)}]}
    response = platform.request("POST", "dog-breed-pipeline.default.localhost", "/", json=body)
    assert response.status_code == 200, f"{response.text}\n{platform.log()}"
    return response.json()


def test_a_dog_goes_on_to_the_breed_classifier(platform):
    (breeds,) = ask_the_pipeline(platform, (220, 200, 30))["predictions"]
    assert list(breeds)[0] == "golden_retriever"
    (breeds,) = ask_the_pipeline(platform, (220, 10, 30))["predictions"]
    assert list(breeds)[0] == "beagle"


def test_a_cat_stops_at_the_first_classifier(platform):
    assert ask_the_pipeline(platform, (30, 30, 220)) == {"predictions": ["cat"]}


def test_a_torchscript_program_through_the_gateway(platform):
    path = "/v1/models/torchscript-mlp:predict"
    response = platform.request(
        "POST", "torchscript-mlp.default.localhost", path, json={"instances": [[1, 2, 3, 4]]}
    )
    assert response.status_code == 200, response.text
    (scores,) = response.json()["predictions"]
    assert len(scores) == 3
