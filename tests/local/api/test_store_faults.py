"""A store whose file is damaged, as a crash, a full disk or a hand in an `sqlite3` shell leaves it: one
damaged record costs that object only, and a damaged file is refused naming it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from pathlib import Path

import pytest

from modelplane.local.api.store import Ref, Store, store_path
from modelplane.local.api.store_faults import RecordDamaged, StoreDamaged


def isvc(name: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "file:///m"}}},
    }


BROKEN = Ref("InferenceService", "default", "broken")


def cut_record_in_half(path: Path, name: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE resources SET body=substr(body, 1, length(body) / 2) WHERE name=?", (name,))


def stored_body(path: Path, name: str) -> bytes:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT body FROM resources WHERE name=?", (name,)).fetchone()[0]


def names(resources: list[dict]) -> list[str]:
    return [resource["metadata"]["name"] for resource in resources]


@pytest.fixture
def damaged(tmp_path):
    """A store holding `iris`, `zebra` and `broken`, whose record is cut in half."""
    path = store_path(tmp_path)
    store = Store(path)
    for name in ("iris", "broken", "zebra"):
        store.create(isvc(name))
    store.close()
    cut_record_in_half(path, "broken")
    store = Store(path)
    yield store
    store.close()


def test_a_damaged_record_is_left_out_of_lists_with_one_warning_and_kept_on_disk(damaged, caplog):
    cut = stored_body(damaged.path, "broken")
    with caplog.at_level(logging.WARNING, "modelplane.store"):
        for _ in range(3):
            assert names(damaged.list("InferenceService")[0]) == ["iris", "zebra"]
            assert names(damaged.list("InferenceService", "default")[0]) == ["iris", "zebra"]
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith(
        f"InferenceService default/broken cannot be read: its record in the store {damaged.path} is damaged; "
        "delete it and apply it again, or restore the store from a backup"
    )
    assert "\n" not in warning
    assert stored_body(damaged.path, "broken") == cut


def test_reading_a_damaged_record_is_a_500_naming_it(damaged):
    with pytest.raises(RecordDamaged) as raised:
        damaged.get(BROKEN)
    assert raised.value.code == 500
    assert raised.value.to_status()["message"].startswith("InferenceService default/broken cannot be read")
    assert raised.value.details["name"] == "broken"
    with pytest.raises(RecordDamaged):
        damaged.set_status(BROKEN, {"url": "http://x"})


def test_a_watch_starts_with_the_objects_that_can_be_read(damaged):
    async def first_two() -> list[str]:
        seen = []
        async for event in damaged.watch("InferenceService"):
            seen.append(event.object["metadata"]["name"])
            if len(seen) == 2:
                return seen

    assert asyncio.run(asyncio.wait_for(first_two(), 30)) == ["iris", "zebra"]


def test_other_objects_are_written_as_usual_and_deleting_the_damaged_one_gets_rid_of_it(damaged):
    damaged.create(isvc("next"))  # admission sees the other services: those that can be read
    deleted = damaged.delete(BROKEN)
    assert deleted["metadata"]["name"] == "broken"
    assert names(damaged.list("InferenceService")[0]) == ["iris", "next", "zebra"]
    assert damaged.create(isvc("broken"))["metadata"]["generation"] == 1


def test_a_store_file_cut_short_is_refused_naming_it(tmp_path):
    path = store_path(tmp_path)
    store = Store(path)
    for index in range(40):
        store.create(isvc(f"s{index}"))
    store.close()
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(StoreDamaged) as raised:
        Store(path)
    assert str(raised.value).startswith(f"the store {path} is damaged (")
    assert "move it aside or restore it from a backup" in str(raised.value)
