"""What the InferenceGraph router adds to each call, against calling the services directly.

    python bench/graph_router.py [--requests 2000]

Starts a stub service (tests/graph/stub_service.py, a raw ASGI app on uvicorn) and `modelplane router`
processes on 127.0.0.1, then measures, one request at a time, interleaved:

- 1-step Sequence: client -> router -> stub, against client -> stub;
- 3-step Sequence: client -> router -> 3 stubs in turn, against the client calling the 3 in turn;
- 3-way Ensemble: client -> router -> 3 stubs at once, against the client calling the 3 at once.

The added latency is router p50 minus direct p50; per hop it is divided by the number of steps.
It also compares HTTP clients for the router's calls (httpx, aiohttp, modelplane's own), POSTing to the stub.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

from modelplane.graph.http_client import HttpClient, parse_target

ROOT = Path(__file__).resolve().parent.parent
STUB = ROOT / "tests" / "graph" / "stub_service.py"
BODY = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}).encode()
HEADERS = b"Content-Type: application/json\r\n"


def start(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"{args} did not start: {line}")
    return proc, line.strip().rsplit(" ", 1)[-1]


def start_router(root: dict) -> tuple[subprocess.Popen, str]:
    spec = json.dumps({"nodes": {"root": root}})
    return start([sys.executable, "-m", "modelplane", "router", "--graph-json", spec, "--host", "127.0.0.1",
                  "--port", "0", "--drain-seconds", "0"])  # fmt: skip


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(cases: dict[str, Callable[[], Awaitable[None]]], requests: int) -> dict[str, list[float]]:
    """Interleaved, so that drift in the machine's load hits every case alike. Milliseconds."""
    for call in cases.values():
        for _ in range(200):
            await call()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(requests):
        for name, call in cases.items():
            started = time.perf_counter()
            await call()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


async def bench_router(stub_url: str, requests: int) -> list[tuple[str, int, dict[str, list[float]]]]:
    client = HttpClient()
    step_url = stub_url + "/success"
    step = parse_target(step_url)
    steps3 = [{"name": f"s{i}", "serviceUrl": step_url} for i in range(3)]
    graphs = {
        "1-step Sequence": (1, {"routerType": "Sequence", "steps": steps3[:1]}),
        "3-step Sequence": (3, {"routerType": "Sequence", "steps": steps3}),
        "3-way Ensemble": (3, {"routerType": "Ensemble", "steps": steps3}),
    }
    procs = []
    results = []
    try:
        for name, (hops, root) in graphs.items():
            proc, url = start_router(root)
            procs.append(proc)
            router = parse_target(url + "/")

            async def via_router(router=router) -> None:
                response = await client.post(router, BODY, HEADERS)
                assert response.status == 200, response

            async def direct(hops=hops, parallel=root["routerType"] == "Ensemble") -> None:
                if parallel:
                    await asyncio.gather(*(client.post(step, BODY, HEADERS) for _ in range(hops)))
                else:
                    for _ in range(hops):
                        await client.post(step, BODY, HEADERS)

            samples = await measure({"direct": direct, "router": via_router}, requests)
            results.append((name, hops, samples))
    finally:
        client.close()
        for proc in procs:
            proc.terminate()
            proc.wait()
    return results


async def bench_clients(stub_url: str, requests: int) -> dict[str, list[float]]:
    url = stub_url + "/success"
    cases: dict[str, Callable[[], Awaitable[None]]] = {}
    closers = []

    own = HttpClient()
    target = parse_target(url)
    closers.append(own.close)

    async def modelplane_client() -> None:
        await own.post(target, BODY, HEADERS)

    cases["modelplane HttpClient"] = modelplane_client

    try:
        import httpx

        hx = httpx.AsyncClient()
        closers.append(hx.aclose)

        async def httpx_client() -> None:
            (await hx.post(url, content=BODY, headers={"content-type": "application/json"})).read()

        cases[f"httpx {httpx.__version__}"] = httpx_client
    except ImportError:
        pass
    try:
        import aiohttp

        session = aiohttp.ClientSession()
        closers.append(session.close)

        async def aiohttp_client() -> None:
            async with session.post(url, data=BODY, headers={"content-type": "application/json"}) as r:
                await r.read()

        cases[f"aiohttp {aiohttp.__version__}"] = aiohttp_client
    except ImportError:
        pass
    try:
        return await measure(cases, requests)
    finally:
        for close in closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per case")
    args = parser.parse_args()
    stub, stub_url = start([sys.executable, str(STUB)])
    try:
        graph_results = uvloop.run(bench_router(stub_url, args.requests))
        client_results = uvloop.run(bench_clients(stub_url, args.requests))
    finally:
        stub.terminate()
        stub.wait()

    print(f"InferenceGraph router, {args.requests} requests per case, concurrency 1, times in ms\n")
    print(
        row("graph", "direct p50", "router p50", "added p50", "added per hop p50", "direct p99", "router p99")
    )
    print(row(*["---"] * 7))
    for name, hops, samples in graph_results:
        direct, router = samples["direct"], samples["router"]
        added = statistics.median(router) - statistics.median(direct)
        print(
            row(
                name,
                f"{statistics.median(direct):.3f}",
                f"{statistics.median(router):.3f}",
                f"{added:.3f}",
                f"{added / hops:.3f}",
                f"{percentile(direct, 0.99):.3f}",
                f"{percentile(router, 0.99):.3f}",
            )
        )
    print("\nHTTP clients, one POST to the stub, times in ms\n")
    print(row("client", "p50", "p99", "ratio to modelplane p50"))
    print(row(*["---"] * 4))
    own = statistics.median(client_results["modelplane HttpClient"])
    for name, samples in client_results.items():
        p50 = statistics.median(samples)
        print(row(name, f"{p50:.3f}", f"{percentile(samples, 0.99):.3f}", f"{p50 / own:.2f}x"))


if __name__ == "__main__":
    main()
