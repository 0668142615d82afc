"""A service whose revision file cannot be read starts again from its spec, and says so: the file is
moved aside, and the service gets a Warning event."""

from __future__ import annotations

import asyncio
import sys

from modelplane.control import Revision
from modelplane.local.api.events import EventRecorder
from modelplane.local.api.server import open_store
from modelplane.local.api.store import Ref
from modelplane.local.controllers.reconciler import Reconciler
from modelplane.local.controllers.revision_log import RevisionLog
from modelplane.local.gateway.server import Gateway
from modelplane.local.replicas.supervisor import SupervisorSettings

ISVC = Ref("InferenceService", "default", "iris")


def waiting_service() -> dict:
    command = [sys.executable, "-c", "import time; time.sleep(600)"]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "default"},
        "spec": {"predictor": {"containers": [{"name": "kserve-container", "command": command}]}},
    }


def latest_created(store) -> str | None:
    status = store.get(ISVC).get("status") or {}
    return (status.get("components") or {}).get("predictor", {}).get("latestCreatedRevision")


def test_a_revision_file_cut_short_is_moved_aside_and_told_in_an_event(tmp_path):
    store = open_store(tmp_path)
    store.create(waiting_service())
    log = RevisionLog(tmp_path / "revisions")
    log.save("default", "iris", [Revision("iris-predictor-00007", "predictor", 7, "abc", {"command": ["x"]})])
    path = tmp_path / "revisions" / "default" / "iris.json"
    cut = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(cut)

    async def reconcile_once() -> None:
        settings = SupervisorSettings(logs_dir=tmp_path / "logs", gateway_port=8080)
        reconciler = Reconciler(store, Gateway(), settings, log, events=EventRecorder(store))
        reconciler.start()
        try:
            while latest_created(store) is None:
                await asyncio.sleep(0.05)
        finally:
            await reconciler.close()

    try:
        asyncio.run(asyncio.wait_for(reconcile_once(), 120))
        assert latest_created(store) == "iris-predictor-00001"
        aside = path.with_name("iris.json.damaged")
        assert aside.read_bytes() == cut
        [event] = [e for e in store.list("Event", "default")[0] if e["reason"] == "RevisionHistoryLost"]
        assert event["type"] == "Warning"
        assert event["involvedObject"]["name"] == "iris"
        assert event["message"] == (
            f"its revision history could not be read and was moved to {aside}: it starts again from its "
            "spec, and its past revisions and their traffic split are lost"
        )
    finally:
        store.close()
