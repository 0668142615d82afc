"""A multi-model revision stopped for good leaves no copies of its TrainedModels on disk."""

from __future__ import annotations

import asyncio

from modelplane.api.constants import MULTI_MODEL_SERVER_ENV
from modelplane.control.revisions import Revision
from modelplane.local.replicas.supervisor import RevisionReplicas, SupervisorSettings


def folders(tmp_path, revision: Revision) -> RevisionReplicas:
    settings = SupervisorSettings(logs_dir=tmp_path / "logs")
    return RevisionReplicas(revision, "default", "iris", 0, settings, lambda: None)


def test_a_retired_multi_model_revision_s_model_folders_are_removed_and_no_other(tmp_path):
    template = {"env": {MULTI_MODEL_SERVER_ENV: "true"}}
    old = Revision("iris-predictor-00001", "predictor", 1, "d1", template)
    component = tmp_path / "repositories" / "default" / "iris" / "predictor"
    for name in ("iris-predictor-00001-0", "iris-predictor-00001-3", "iris-predictor-00002-0"):
        (component / name / "model-a").mkdir(parents=True)
        (component / name / "model-a" / "model.joblib").write_bytes(b"weights")
    asyncio.run(folders(tmp_path, old).remove_model_folders())
    assert sorted(p.name for p in component.iterdir()) == ["iris-predictor-00002-0"]

    single = Revision("iris-predictor-00002", "predictor", 2, "d2", {"storage": {"uri": "pvc://m"}})
    asyncio.run(folders(tmp_path, single).remove_model_folders())  # not multi-model: nothing of its own
    assert sorted(p.name for p in component.iterdir()) == ["iris-predictor-00002-0"]


def test_a_replica_stopped_while_its_trained_models_are_fetched_stops_at_once(tmp_path):
    """The fetches before a multi-model replica starts end when it is stopped, as its storage
    initializer's would: a stop (a scale-down, `modelplane up` shutting down) does not wait for them."""
    fetching, cancelled = asyncio.Event(), asyncio.Event()

    async def prepare(_replica) -> None:  # a download that takes longer than the test
        fetching.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def scenario() -> None:
        settings = SupervisorSettings(logs_dir=tmp_path / "logs", prepare_repository=prepare)
        template = {"env": {MULTI_MODEL_SERVER_ENV: "true"}}
        revision = Revision("mms-predictor-00001", "predictor", 1, "d1", template)
        replicas = RevisionReplicas(revision, "default", "mms", 0, settings, lambda: None)
        replicas.scale(1)
        await asyncio.wait_for(fetching.wait(), 60)
        await asyncio.wait_for(replicas.stop(), 60)
        assert cancelled.is_set()

    asyncio.run(scenario())
