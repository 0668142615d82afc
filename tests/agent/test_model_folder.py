"""A model folder fetches a model's new version beside the one it holds, which stays until it is there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelplane.agent.model_folder import ModelFolder, SchemaUnavailable
from modelplane.agent.model_list import WantedModel


def wanted(uri: str, digest: str) -> WantedModel:
    return WantedModel(storage_uri=uri, digest=digest)


async def copy_fetch(uri: str, dest: Path) -> None:
    if uri == "missing":
        raise FileNotFoundError(uri)
    dest.mkdir()
    (dest / "model.joblib").write_text(uri)


def test_a_new_version_replaces_the_old_only_once_fetched(tmp_path):
    folder = ModelFolder(tmp_path)
    asyncio.run(folder.fill("iris", wanted("v1", "d1"), copy_fetch))

    with pytest.raises(FileNotFoundError):
        asyncio.run(folder.fetch_aside("iris", wanted("missing", "d2"), copy_fetch))
    assert folder.fetched_digest("iris") == "d1"
    assert (tmp_path / "iris" / "model.joblib").read_text() == "v1"
    assert folder.names() == {"iris"}  # nothing half-fetched is taken for a model

    asyncio.run(folder.fetch_aside("iris", wanted("v2", "d2"), copy_fetch))
    assert folder.fetched_digest("iris") == "d1"  # the old version until the swap
    asyncio.run(folder.swap_in("iris", wanted("v2", "d2")))
    assert folder.fetched_digest("iris") == "d2"
    assert (tmp_path / "iris" / "model.joblib").read_text() == "v2"
    assert folder.names() == {"iris"}


def test_the_previous_version_kept_at_a_swap_can_be_put_back(tmp_path):
    """A new version that fails to load gives its place back to the old one."""
    folder = ModelFolder(tmp_path)
    asyncio.run(folder.fill("iris", wanted("v1", "d1"), copy_fetch))
    asyncio.run(folder.fetch_aside("iris", wanted("v2", "d2"), copy_fetch))
    asyncio.run(folder.swap_in("iris", wanted("v2", "d2"), keep_previous=True))
    assert folder.fetched_digest("iris") == "d2" and folder.names() == {"iris"}

    assert asyncio.run(folder.restore_previous("iris", "d1"))
    assert folder.fetched_digest("iris") == "d1"
    assert (tmp_path / "iris" / "model.joblib").read_text() == "v1"
    assert not asyncio.run(folder.restore_previous("iris", "d1"))  # kept once, put back once

    asyncio.run(folder.fetch_aside("iris", wanted("v3", "d3"), copy_fetch))
    asyncio.run(folder.swap_in("iris", wanted("v3", "d3"), keep_previous=True))
    asyncio.run(folder.drop_previous("iris"))
    assert not asyncio.run(folder.restore_previous("iris", "d1"))
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == ["iris"]


async def schema_fetch(uri: str, dest: Path) -> None:
    """Fetches `schema:<text>` as one file, as a storage fetch of a single object does."""
    if not uri.startswith("schema:"):
        return await copy_fetch(uri, dest)
    if uri == "schema:missing":
        raise FileNotFoundError("no such object: schema.json")
    dest.mkdir()
    (dest / "schema.json").write_text(uri.removeprefix("schema:"))


def test_a_models_schema_is_fetched_beside_it_and_follows_its_version(tmp_path):
    """ModelMesh's schemaPath: the file is kept beside the model's folder (a .json file in it would be
    taken for an XGBoost model), swapped, put back and removed with it."""
    folder = ModelFolder(tmp_path)
    asyncio.run(folder.fill("iris", WantedModel("v1", "d1", schema_uri="schema:one"), schema_fetch))
    assert folder.schema_text("iris") == "one"
    assert sorted(path.name for path in (tmp_path / "iris").iterdir()) == ["model.joblib"]

    asyncio.run(folder.fetch_aside("iris", WantedModel("v2", "d2"), schema_fetch))
    asyncio.run(folder.swap_in("iris", WantedModel("v2", "d2"), keep_previous=True))
    assert folder.schema_text("iris") is None  # the new version has none
    assert asyncio.run(folder.restore_previous("iris", "d1"))
    assert folder.schema_text("iris") == "one"

    asyncio.run(folder.fetch_aside("iris", WantedModel("v3", "d3", schema_uri="schema:three"), schema_fetch))
    asyncio.run(folder.swap_in("iris", WantedModel("v3", "d3", schema_uri="schema:three")))
    assert folder.schema_text("iris") == "three"
    asyncio.run(folder.remove("iris"))
    assert folder.schema_text("iris") is None
    assert list(tmp_path.iterdir()) == []


def test_a_schema_that_cannot_be_fetched_fails_the_fetch(tmp_path):
    """As ModelMesh's puller fails a model whose schema file is not there; the version held stays."""
    folder = ModelFolder(tmp_path)
    asyncio.run(folder.fill("iris", WantedModel("v1", "d1", schema_uri="schema:one"), schema_fetch))
    with pytest.raises(SchemaUnavailable, match="the model's schema could not be fetched: no such object"):
        asyncio.run(
            folder.fetch_aside("iris", WantedModel("v2", "d2", schema_uri="schema:missing"), schema_fetch)
        )
    assert (folder.fetched_digest("iris"), folder.schema_text("iris")) == ("d1", "one")
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".iris.schema.json",
        ".iris.trainedmodel",
        "iris",
    ]
