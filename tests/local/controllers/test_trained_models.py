"""The TrainedModel controller against a real store and real multi-model servers: every ready replica gets
the models, a replica that joins later too, and a deleted TrainedModel leaves them all; a model whose
download is slow holds up no other model, nor a replica's start."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import httpx
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelplane.local.api.server import open_store
from modelplane.local.api.store import Ref
from modelplane.local.controllers import trained_models
from modelplane.local.controllers.trained_models import TrainedModels
from tests.server.processes import serve
from tests.storage.servers import TricklingServer

KEY = ("default", "mms")
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}


def replica(server, folder, log) -> SimpleNamespace:
    return SimpleNamespace(
        address=f"127.0.0.1:{server.http_port}",
        model_repository=folder,
        log_path=log,
        label=f"replica on {server.http_port}",
        revision=SimpleNamespace(name="mms-predictor-00001", template={}),
    )


async def eventually(check, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_every_ready_replica_gets_the_trained_models(tmp_path):
    model_dir = tmp_path / "models" / "iris"
    model_dir.mkdir(parents=True)
    features, labels = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), model_dir / "model.joblib")
    folders = [tmp_path / "repositories" / f"mms-predictor-00001-{i}" for i in range(2)]
    servers = []
    for folder in folders:
        folder.mkdir(parents=True)
        servers.append(serve("--model-dir", str(folder), "--runtime", "sklearn", "--multi-model", grpc=False))
    replicas = [replica(s, f, tmp_path / f"{f.name}.log") for s, f in zip(servers, folders, strict=True)]
    store = open_store(tmp_path / "home")
    tm_ref = Ref("TrainedModel", "default", "iris")

    async def status_of(name: str) -> dict[str, str]:
        conditions = (store.get(Ref("TrainedModel", "default", name)).get("status") or {}).get(
            "conditions"
        ) or []
        return {c["type"]: c["status"] for c in conditions}

    async def holds(server, status: int) -> bool:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{server.url}/v1/models/iris")).status_code == status

    async def scenario():
        store.create(
            {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": {"name": "mms", "namespace": "default"},
                "spec": {"predictor": {"sklearn": {}}},
            }
        )
        store.set_status(
            Ref("InferenceService", "default", "mms"),
            {"conditions": [{"type": "Ready", "status": "True"}], "url": "http://mms.default.localhost:8080"},
        )
        store.create(
            {
                "apiVersion": "serving.kserve.io/v1alpha1",
                "kind": "TrainedModel",
                "metadata": {"name": "iris", "namespace": "default"},
                "spec": {
                    "inferenceService": "mms",
                    "model": {"storageUri": f"file://{model_dir}", "framework": "sklearn", "memory": "64Mi"},
                },
            }
        )
        controller = TrainedModels(store)
        controller.start()
        try:
            controller.replicas_changed(KEY, replicas[:1])
            await eventually(lambda: holds(servers[0], 200), "the model on the first replica")
            await eventually(lambda: _ready(status_of), "Ready")
            url = store.get(tm_ref)["status"]["url"]
            assert url == "http://mms.default.localhost:8080/v1/models/iris:predict"

            # A replica that becomes ready later (a scale-up) gets it too.
            controller.replicas_changed(KEY, replicas)
            await eventually(lambda: holds(servers[1], 200), "the model on the second replica")
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.post(f"{servers[1].url}/v1/models/iris:predict", json=IRIS)
            assert response.json() == {"predictions": [1, 1]}
            assert sorted(p.name for p in folders[1].iterdir()) == [".iris.trainedmodel", "iris"]

            store.delete(tm_ref)
            for server in servers:
                await eventually(lambda server=server: holds(server, 404), "the model unloaded")
            await eventually(lambda: _empty(folders), "the folders emptied")
        finally:
            await controller.close()

    try:
        asyncio.run(scenario())
    finally:
        for server in servers:
            server.stop()
        store.close()


async def _empty(folders) -> bool:
    return all(not any(folder.iterdir()) for folder in folders)


async def _ready(status_of) -> bool:
    return (await status_of("iris")).get("Ready") == "True"


def _iris_model(folder):
    folder.mkdir(parents=True)
    features, labels = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), folder / "model.joblib")


def _multi_model_service(store) -> None:
    store.create(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "mms", "namespace": "default"},
            "spec": {"predictor": {"sklearn": {}}},
        }
    )
    store.set_status(
        Ref("InferenceService", "default", "mms"),
        {"conditions": [{"type": "Ready", "status": "True"}], "url": "http://mms.default.localhost:8080"},
    )


def _trained_model(store, name: str, uri: str) -> None:
    store.create(
        {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "TrainedModel",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "inferenceService": "mms",
                "model": {"storageUri": uri, "framework": "sklearn", "memory": "64Mi"},
            },
        }
    )


def test_a_model_whose_download_is_slow_holds_up_no_other_model(tmp_path, monkeypatch):
    """As KServe's agent pulls each model on its own: while a TrainedModel's download goes on, the other
    models load, each status is written (the slow one loading), deleting it stops its download, and a
    replica that starts waits for it no longer than PREPARE_WAIT."""
    model_dir = tmp_path / "models" / "iris"
    _iris_model(model_dir)
    predictor = tmp_path / "repositories" / "default" / "mms" / "predictor"
    folders = [predictor / f"mms-predictor-00001-{i}" for i in range(2)]
    folders[0].mkdir(parents=True)
    server = serve("--model-dir", str(folders[0]), "--runtime", "sklearn", "--multi-model", grpc=False)
    first = replica(server, folders[0], tmp_path / "replica-0.log")
    trickling = TricklingServer()
    store = open_store(tmp_path / "home")
    monkeypatch.setattr(trained_models, "PREPARE_WAIT", 2.0)

    def conditions(name: str) -> dict[str, tuple[str, str | None]]:
        status = store.get(Ref("TrainedModel", "default", name)).get("status") or {}
        return {c["type"]: (c["status"], c.get("reason")) for c in status.get("conditions") or []}

    async def served(name: str) -> bool:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{server.url}/v1/models/{name}")).status_code == 200

    async def scenario():
        _multi_model_service(store)
        _trained_model(store, "slow", f"{trickling.url}/model.joblib")
        controller = TrainedModels(store)
        controller.start()
        try:
            controller.replicas_changed(KEY, [first])
            await eventually(lambda: _true(trickling.downloads > 0), "the slow download")
            _trained_model(store, "quick", f"file://{model_dir}")
            await eventually(lambda: served("quick"), "the quick model loaded meanwhile")
            await eventually(lambda: _true(conditions("quick").get("Ready") == ("True", None)), "quick Ready")
            await eventually(
                lambda: _true(conditions("slow").get("Ready") == ("Unknown", "ModelLoading")), "slow loading"
            )
            assert store.get(Ref("TrainedModel", "default", "slow"))["status"]["url"].endswith(
                "/v1/models/slow:predict"
            )

            # Deleting the slow one stops its download.
            store.delete(Ref("TrainedModel", "default", "slow"))
            await eventually(lambda: _true(trickling.downloads == 0), "the download stopped")

            # A replica that starts gets the quick model and does not wait for the slow one's download.
            _trained_model(store, "slow", f"{trickling.url}/model.joblib")
            folders[1].mkdir(parents=True)
            second = replica(server, folders[1], tmp_path / "replica-1.log")
            await asyncio.wait_for(controller.prepare_folder(second), 60)
            assert sorted(p.name for p in folders[1].iterdir()) == [".quick.trainedmodel", "quick"]
        finally:
            await controller.close()

    try:
        asyncio.run(scenario())
    finally:
        trickling.stop()
        server.stop()
        store.close()


async def _true(value: bool) -> bool:
    return value
