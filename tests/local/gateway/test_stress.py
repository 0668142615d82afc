"""Many clients misbehaving at once while the routes change under them: nothing leaks, nothing raises."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import subprocess
import sys
import time
from pathlib import Path

from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.local.gateway.server import GatewayConfig, GatewayThread

APP = Path(__file__).with_name("upstream_app.py")

REQUESTS = {
    "get": b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n",
    "post": b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    "chunked": b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "slow": b"GET /slow?seconds=5 HTTP/1.1\r\nHost: h\r\n\r\n",
    "pipelined": b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
    "download": b"GET /bytes?n=300000 HTTP/1.1\r\nHost: h\r\n\r\n",
    "malformed": b"GET / HTTP/1.1\r\nHost: h\r\nbad header\r\n\r\n",
    "unknown host": b"GET / HTTP/1.1\r\nHost: nobody\r\n\r\n",
}


def table(replicas: list[str], container_concurrency: int) -> RouteTable:
    return RouteTable(
        {"h": Route((Backend("rev-1", tuple(replicas), container_concurrency=container_concurrency),))}
    )


async def client(port: int, rng: random.Random, seen: list[bytes]) -> None:
    for _ in range(20):
        kind = rng.choice(sorted(REQUESTS))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUESTS[kind])
        await writer.drain()
        if kind == "slow" or rng.random() < 0.2:
            await asyncio.sleep(rng.random() * 0.05)
            writer.transport.abort()  # gone mid-request
            continue
        with contextlib.suppress(ConnectionError):
            seen.append((await asyncio.wait_for(reader.read(65536), 30))[:12])
        writer.close()


async def churn(gateway, replicas: list[str], rng: random.Random) -> None:
    for _ in range(20):
        await asyncio.sleep(0.1)
        chosen = rng.choice([replicas, replicas[:1], replicas[1:], []])
        await asyncio.to_thread(gateway.update_routes, table(chosen, rng.choice([0, 1, 2])))
    await asyncio.to_thread(gateway.update_routes, table(replicas, 2))


async def storm(gateway, replicas: list[str]) -> list[bytes]:
    rng = random.Random(4)
    seen: list[bytes] = []
    await asyncio.gather(churn(gateway, replicas, rng), *(client(gateway.port, rng, seen) for _ in range(20)))
    return seen


def test_a_storm_of_clients_leaves_nothing_in_flight_and_logs_no_error(caplog):
    caplog.set_level(logging.ERROR)
    processes = [
        subprocess.Popen([sys.executable, str(APP), f"r{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    thread = GatewayThread(GatewayConfig(port=0, queue_timeout=2, response_timeout=3))
    try:
        replicas = [f"127.0.0.1:{int(process.stdout.readline())}" for process in processes]
        gateway = thread.start()
        gateway.update_routes(table(replicas, 2))
        seen = asyncio.run(storm(gateway, replicas))
        give_up = time.monotonic() + 30
        while (gateway.revision_stats()["rev-1"].in_flight, gateway.revision_stats()["rev-1"].queued) != (
            0,
            0,
        ):
            assert time.monotonic() < give_up, f"still busy: {gateway.revision_stats()}"
            time.sleep(0.05)
    finally:
        thread.stop()
        for process in processes:
            process.terminate()
            process.wait(10)
    statuses = {answer[:12] for answer in seen}
    assert b"HTTP/1.1 200" in statuses and b"HTTP/1.1 400" in statuses and b"HTTP/1.1 404" in statuses
    assert statuses <= {b"HTTP/1.1 200", b"HTTP/1.1 400", b"HTTP/1.1 404", b"HTTP/1.1 503", b""}
    assert [record.getMessage() for record in caplog.records] == []
