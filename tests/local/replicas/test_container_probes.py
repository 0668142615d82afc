"""Startup and liveness probes, one action at a time, against real sockets and commands."""

from __future__ import annotations

import asyncio
import sys

import httpx

from modelplane.local.ports import free_loopback_port
from modelplane.local.replicas.command import ReplicaPorts
from modelplane.local.replicas.container_probes import (
    Probes,
    ProbeSpec,
    Readiness,
    check,
    guard_liveness,
    replica_probes,
)

TEMPLATE = {"ports": {"http": 8080, "grpc": 8081}}


def spec(action: str, **fields) -> ProbeSpec:
    return ProbeSpec(kind="liveness", action=action, **fields)


async def answering(status: int) -> tuple[asyncio.Server, int]:
    """A server that answers every request with `status`."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_probe_names_the_replicas_ports_by_the_containers():
    template = {
        **TEMPLATE,
        "livenessProbe": {
            "httpGet": {"path": "/live", "port": 8080},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "startupProbe": {"tcpSocket": {"port": 9100}},
    }
    probes = replica_probes(template, ReplicaPorts(31000, 31001))
    assert probes.liveness == ProbeSpec(
        kind="liveness", action="httpGet", port=31000, path="/live", period=5.0, failure_threshold=2
    )
    assert probes.startup is not None and probes.startup.port == 9100  # not the replica's: as it is
    grpc = replica_probes({**TEMPLATE, "livenessProbe": {"grpc": {"port": 8081}}}, ReplicaPorts(1, 2))
    assert grpc.liveness == ProbeSpec(kind="liveness", action="grpc", port=2)  # the replica's gRPC port
    assert replica_probes({**TEMPLATE, "livenessProbe": {"periodSeconds": 3}}, ReplicaPorts(1, 2)) == Probes()


def test_http_probes_pass_below_400():
    async def scenario():
        ok, ok_port = await answering(302)
        bad, bad_port = await answering(500)
        async with ok, bad, httpx.AsyncClient() as client:
            assert await check(spec("httpGet", port=ok_port), client) is None
            assert (
                await check(spec("httpGet", port=bad_port), client)
                == "HTTP probe failed with statuscode: 500"
            )

    asyncio.run(scenario())


def test_tcp_probes_connect():
    async def scenario():
        server, port = await answering(200)
        async with server, httpx.AsyncClient() as client:
            assert await check(spec("tcpSocket", port=port), client) is None
            closed = free_loopback_port()
            failure = await check(spec("tcpSocket", port=closed), client)
            assert failure is not None and failure.startswith(f"TCP 127.0.0.1:{closed}: ")
            named = await check(spec("tcpSocket", port="metrics"), client)
            assert named == "TCP 127.0.0.1:metrics: the container has no port named metrics"

    asyncio.run(scenario())


def test_grpc_probes_ask_the_health_service():
    """A grpcio server whose health service says SERVING for "" and NOT_SERVING for "model"."""
    from concurrent import futures

    import grpc

    from modelplane.protocol.grpc import health

    def check_health(request: bytes, context) -> bytes:
        service = health.HealthCheckRequest.FromString(request).service
        if service == "unknown":
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        status = health.SERVING if service == "" else health.NOT_SERVING
        return health.HealthCheckResponse(status).SerializeToString()

    handler = grpc.method_handlers_generic_handler(
        health.SERVICE_NAME, {"Check": grpc.unary_unary_rpc_method_handler(check_health)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = free_loopback_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()

    async def scenario():
        async with httpx.AsyncClient() as client:
            assert await check(spec("grpc", port=port), client) is None
            said = await check(spec("grpc", port=port, service="model"), client)
            assert said is not None and said.endswith(": NOT_SERVING")
            said = await check(spec("grpc", port=port, service="unknown"), client)
            assert said is not None and said.endswith(": NOT_FOUND: unknown service")
            closed = await check(spec("grpc", port=free_loopback_port()), client)
            assert closed is not None and "UNAVAILABLE" in closed

    try:
        asyncio.run(scenario())
    finally:
        server.stop(None)


def test_exec_probes_pass_on_exit_code_zero_and_time_out():
    async def scenario():
        async with httpx.AsyncClient() as client:
            assert await check(spec("exec", command=(sys.executable, "-c", "pass")), client) is None
            said = await check(
                spec("exec", command=(sys.executable, "-c", "print('no model'); exit(2)")), client
            )
            assert said is not None and said.endswith(": exit code 2: no model")
            slow = spec("exec", command=(sys.executable, "-c", "import time; time.sleep(30)"), timeout=0.5)
            assert (await check(slow, client) or "").endswith("timed out after 0.5s")

    asyncio.run(scenario())


def test_a_process_that_fails_its_liveness_probe_is_stopped_and_says_why():
    async def scenario():
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(60)", start_new_session=True
        )
        failing = spec("exec", command=("false",), period=0.2, failure_threshold=3)
        started = asyncio.Event()
        why = await asyncio.wait_for(guard_liveness(process, Probes(liveness=failing), started, 5.0), 30)
        assert started.is_set()  # no startup probe: started at once
        assert why == "liveness probe failed 3 times: exec false: exit code 1"
        assert process.returncode == -15  # SIGTERM

    asyncio.run(scenario())


def test_until_its_startup_probe_passes_a_process_has_not_started():
    async def scenario():
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(60)", start_new_session=True
        )
        server, port = await answering(200)
        server.close()  # nothing listens: the startup probe fails until it does again
        startup = ProbeSpec(kind="startup", action="tcpSocket", port=port, period=0.2, failure_threshold=100)
        started = asyncio.Event()
        guard = asyncio.create_task(guard_liveness(process, Probes(startup=startup), started, 5.0))
        await asyncio.sleep(1)
        assert not started.is_set()
        listening = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        async with listening:
            await asyncio.wait_for(started.wait(), 10)
        process.terminate()
        assert await asyncio.wait_for(guard, 10) is None  # it ended of itself

    asyncio.run(scenario())


def test_readiness_changes_after_its_thresholds_in_a_row():
    async def scenario():
        server, port = await answering(200)
        closed = free_loopback_port()
        async with server, httpx.AsyncClient() as client:
            readiness = Readiness(spec("tcpSocket", port=port, success_threshold=2, failure_threshold=3))
            assert [await readiness.probe(client) for _ in range(2)] == [False, True]
            readiness.spec = spec("tcpSocket", port=closed, success_threshold=2, failure_threshold=3)
            assert [await readiness.probe(client) for _ in range(3)] == [True, True, False]

    asyncio.run(scenario())
