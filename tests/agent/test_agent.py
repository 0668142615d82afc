"""`modelplane agent` as a process next to a real `modelplane serve --multi-model`, following a models.json
that the test updates as kubelet updates a mounted ConfigMap: listed models are fetched over HTTP and
loaded, and answer; a model whose storageUri fails fails alone and is tried again; a removed model is
unloaded and its folder removed; a list that is not JSON changes nothing; a restarted agent takes over
what the server holds without fetching it again."""

from __future__ import annotations

import httpx
import pytest

from tests.server.processes import serve
from tests.storage.servers import start_http

from .helpers import IRIS, AgentProcess, ConfigMapVolume, eventually, write_iris_models


@pytest.fixture
def bucket(tmp_path):
    root = tmp_path / "bucket"
    write_iris_models(root)
    server = start_http(root)
    yield root, server.url
    server.stop()


def answers(server, name: str) -> bool:
    return httpx.get(f"{server.url}/v2/models/{name}/ready", timeout=5).status_code == 200


def predict(server, name: str) -> list:
    response = httpx.post(f"{server.url}/v1/models/{name}:predict", json=IRIS, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_the_agent_follows_the_list(tmp_path, bucket):
    root, url = bucket
    config = ConfigMapVolume(tmp_path / "configs")
    models = tmp_path / "models"
    models.mkdir()
    config.write_models({"iris": f"{url}/iris/model.joblib", "late": f"{url}/late/model.joblib"})
    server = serve("--model-dir", str(models), "--runtime", "sklearn", "--multi-model", grpc=False)
    args = ["--config-dir", str(config.root), "--model-dir", str(models), "--server", server.url]
    args += ["--poll-interval", "0.2"]
    env = {"MODELPLANE_HOME": str(tmp_path / "home")}
    agent = AgentProcess(*args, log_path=tmp_path / "agent.log", env=env)
    try:
        eventually(lambda: answers(server, "iris"), "iris loaded")
        assert predict(server, "iris") == [1, 1]
        assert sorted(p.name for p in models.iterdir()) == [".iris.trainedmodel", "iris"]

        # `late` is not there: it fails, on its own, and is tried again.
        eventually(lambda: agent.log().count("loading late failed") >= 2, "late tried twice")
        assert "not found" in agent.log().lower()
        assert not answers(server, "late")

        # A restarted agent takes over what the server holds: nothing is fetched again.
        assert agent.stop() == 0
        agent = AgentProcess(*args, log_path=tmp_path / "agent-2.log", env=env)
        eventually(lambda: "models listed: iris, late" in agent.log(), "the second agent read the list")

        # Once the file is there, `late` loads at its next try; a model added to the list loads too.
        (root / "late").mkdir()
        (root / "late" / "model.joblib").write_bytes((root / "constant" / "model.joblib").read_bytes())
        config.write_models(
            {
                "iris": f"{url}/iris/model.joblib",
                "late": f"{url}/late/model.joblib",
                "constant": f"{url}/constant/model.joblib",
            }
        )
        eventually(lambda: answers(server, "late") and answers(server, "constant"), "late and constant")
        assert predict(server, "late") == predict(server, "constant") == [0, 0]
        assert "fetching trained model iris" not in agent.log()

        # A list that is not JSON is left aside: the models stay.
        config.write({"models.json": "[{"})
        eventually(lambda: "left aside" in agent.log(), "the bad list noticed")
        assert answers(server, "iris") and answers(server, "late") and answers(server, "constant")

        # A model that leaves the list is unloaded, and its folder removed.
        config.write_models({"late": f"{url}/late/model.joblib", "constant": f"{url}/constant/model.joblib"})
        eventually(lambda: not answers(server, "iris"), "iris unloaded")
        assert httpx.get(f"{server.url}/v2/models/iris/ready").status_code == 404
        eventually(lambda: not (models / "iris").exists(), "the folder of iris removed")
        assert sorted(p.name for p in models.iterdir() if not p.name.startswith(".")) == ["constant", "late"]
        assert not (models / ".iris.trainedmodel").exists()
        assert answers(server, "late") and answers(server, "constant")
    finally:
        code = agent.stop()
        server.stop()
    assert code == 0, agent.log()


def test_prefetch_fills_the_folder_before_the_server_starts(tmp_path, bucket):
    _root, url = bucket
    config = ConfigMapVolume(tmp_path / "configs")
    models = tmp_path / "models"
    models.mkdir()
    (models / "stale").mkdir()  # a model the list no longer has
    config.write_models({"iris": f"{url}/iris/model.joblib", "missing": f"{url}/missing/model.joblib"})
    prefetch = AgentProcess(
        "--prefetch",
        "--config-dir",
        str(config.root),
        "--model-dir",
        str(models),
        log_path=tmp_path / "prefetch.log",
        env={"MODELPLANE_HOME": str(tmp_path / "home")},
    )
    assert prefetch.wait() == 0, prefetch.log()
    assert "trained model missing could not be fetched" in prefetch.log()
    assert sorted(p.name for p in models.iterdir()) == [".iris.trainedmodel", "iris"]

    # The server loads what is there before it says it is ready.
    server = serve("--model-dir", str(models), "--runtime", "sklearn", "--multi-model", grpc=False)
    try:
        assert answers(server, "iris")
        assert predict(server, "iris") == [1, 1]
    finally:
        server.stop()


def test_a_missing_config_dir_is_a_one_line_error(tmp_path):
    agent = AgentProcess(
        "--config-dir", str(tmp_path / "nowhere"), "--model-dir", str(tmp_path), log_path=tmp_path / "a.log"
    )
    assert agent.wait() == 2
    assert agent.log().strip() == f"modelplane agent: --config-dir {tmp_path / 'nowhere'} is not a folder"
