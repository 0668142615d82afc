"""The repository client against a real HTTP server that takes its time to load a model."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from modelplane.agent.repository import RepositoryClient, RepositoryError
from modelplane.protocol import http_server


@pytest.fixture
def slow_server():
    """A server whose load answers after 2 s (long enough for a 0.2 s limit to run out first)."""

    async def handle(request: http_server.HttpRequest) -> http_server.HttpResponse:
        if request.path.endswith(b"/load"):
            await asyncio.sleep(2)
        return http_server.HttpResponse(200, b"{}", b"application/json")

    return handle


async def _serving(handle):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    shutdown = http_server.Shutdown(0)
    task = asyncio.create_task(http_server.serve(handle, sock, http_server.ServerLimits(None, 75), shutdown))
    return f"http://127.0.0.1:{sock.getsockname()[1]}", shutdown, task


def test_a_load_that_takes_longer_than_its_limit_fails_saying_what_set_it(slow_server):
    asyncio.run(_load_with_a_limit(slow_server))


async def _load_with_a_limit(slow_server) -> None:
    url, shutdown, task = await _serving(slow_server)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=600.0)) as client:
            limited = RepositoryClient(
                client, url, (0.2, "the runtime's builtInAdapter.modelLoadingTimeoutMillis")
            )
            with pytest.raises(RepositoryError) as refused:
                await limited.load("iris")
            assert str(refused.value) == (
                "loading iris took longer than 0.2 s (the runtime's builtInAdapter.modelLoadingTimeoutMillis)"
            )
            await limited.unload("iris")  # other calls keep the client's own limit
            await RepositoryClient(client, url).load("iris")  # without a limit it waits for the answer
    finally:
        shutdown.request()
        await task
