"""What the API tests share: a real control-plane API process, one per test module."""

from __future__ import annotations

import httpx
import pytest

from modelplane.local.api.process import ApiProcess


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A client of a control-plane API of its own, on a fresh store."""
    with (
        ApiProcess(tmp_path_factory.mktemp("home")) as process,
        httpx.Client(base_url=process.url, timeout=30) as client,
    ):
        yield client
