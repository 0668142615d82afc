"""A store whose file is damaged, as a crash, a full disk or a hand in an `sqlite3` shell leaves it: one
damaged record costs that object only, and a damaged file is refused naming it. A store whose disk is
full: a write is a clear 503 that writes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from modelplane.local.api.server import ApiServer, bind
from modelplane.local.api.store import Ref, Store, store_path
from modelplane.local.api.store_faults import RecordDamaged, StoreDamaged, StoreFull

ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"


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


def test_the_standalone_api_server_refuses_a_damaged_store_in_one_line(tmp_path):
    path = store_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database" * 100)
    command = [sys.executable, "-m", "modelplane.local.api.server", "--home", str(tmp_path), "--port", "0"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert finished.stderr.startswith(f"the store {path} is damaged (")
    assert "Traceback" not in finished.stderr


def fill_the_disk(store: Store) -> None:
    """Makes the store's file unable to grow, as a full disk does: SQLite answers SQLITE_FULL."""
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")


def big_isvc(name: str) -> dict:
    resource = isvc(name)
    resource["metadata"]["annotations"] = {"filler": "x" * 100_000}
    return resource


def test_a_write_on_a_full_disk_is_a_503_that_writes_nothing_and_the_store_goes_on(tmp_path):
    store = Store(store_path(tmp_path))
    try:
        store.create(isvc("iris"))
        fill_the_disk(store)
        writes = {
            "create": lambda: store.create(big_isvc("big")),
            "apply": lambda: store.apply([big_isvc("big")]),
            "update": lambda: store.update(
                Ref("InferenceService", "default", "iris"), lambda _: big_isvc("iris")
            ),
        }
        for write in writes.values():
            with pytest.raises(StoreFull) as raised:
                write()
            assert (raised.value.code, raised.value.reason) == (503, "ServiceUnavailable")
            assert str(raised.value) == (
                f"the store's disk is full ({store.path}): nothing was written; free some space and try again"
            )
            assert str(raised.value.__context__) == "database or disk is full"  # what a full disk says
        assert store.resource_version() == "1"
        assert names(store.list("InferenceService")[0]) == ["iris"]
        store._db.execute("PRAGMA max_page_count=1073741823")  # space again
        assert store.create(big_isvc("big"))["metadata"]["resourceVersion"] == "2"
    finally:
        store.close()


def test_the_api_answers_503_on_a_full_disk_and_the_cli_prints_it_in_one_line(tmp_path):
    store = Store(store_path(tmp_path))
    store.create(big_isvc("iris"))  # its deletion records it whole, in pages the disk has no room for
    fill_the_disk(store)
    manifest = tmp_path / "big.json"
    manifest.write_text(json.dumps(big_isvc("big")))
    expected = f"the store's disk is full ({store.path}): nothing was written; free some space and try again"

    async def scenario() -> tuple[list[httpx.Response], bytes, int]:
        server = ApiServer(store, bind("127.0.0.1", 0))
        serving = asyncio.create_task(server.run())
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                while (await client.get("/healthz")).status_code != 200:
                    await asyncio.sleep(0)
                answers = [
                    await client.post(f"{ISVCS}", json=big_isvc("big")),
                    await client.patch(
                        f"{ISVCS}/iris",
                        content=json.dumps({"metadata": {"annotations": {"more": "y" * 100_000}}}),
                        headers={"content-type": "application/merge-patch+json"},
                    ),
                    await client.delete(f"{ISVCS}/iris"),
                ]
            cli = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "modelplane",
                "apply",
                "-f",
                str(manifest),
                "--server",
                server.url,
                stderr=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
            )
            _, stderr = await cli.communicate()
            return answers, stderr, cli.returncode
        finally:
            server.stop()
            await serving

    try:
        answers, stderr, returncode = asyncio.run(scenario())
    finally:
        store.close()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["reason"] == "ServiceUnavailable"
        assert answer.json()["message"] == expected
    assert returncode != 0
    [line] = stderr.decode().splitlines()
    assert line.startswith(f"modelplane apply: {expected}")
