from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelplane.storage import RetryPolicy, TransferOptions

from .servers import Server, start_azurite, start_gcs_emulator, start_moto, start_registry

_LEAKY_ENV = [
    name
    for name in os.environ
    if name.startswith(("AWS_", "S3_", "AZURE_", "AZ_", "GOOGLE_", "STORAGE_", "MODELPLANE_"))
    or name in ("awsAnonymousCredential", "CA_BUNDLE_CONFIGMAP_NAME")
]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own modelplane home, cache, and an environment free of storage settings."""
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("MODELPLANE_HOME", str(home))
    return home


@pytest.fixture
def cache_dir(isolated: Path) -> Path:
    return isolated / "cache" / "models"


@pytest.fixture
def fast_retry() -> TransferOptions:
    """Retries without long pauses, so failing tests fail quickly."""
    return TransferOptions(
        concurrency=4, part_size=1024 * 1024, retry=RetryPolicy(attempts=3, initial_delay=0.01)
    )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Server]:
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[Server]:
    server = start_gcs_emulator()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()
