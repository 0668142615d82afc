"""What the InferenceGraph router adds to each call, against calling the services directly.

    python3 bench/graph_router.py [--requests 2000] [--write-results]

Starts a stub service (tests/graph/stub_service.py, a raw ASGI app on uvicorn) and `modelplane router`
processes on 127.0.0.1, then measures, one request at a time, all cases interleaved:

- 1-step Sequence: client -> router -> stub, against client -> stub;
- 3-step Sequence: client -> router -> 3 stubs in turn, against the client calling the 3 in turn;
- 3-way Ensemble: client -> router -> 3 stubs at once, against the client calling the 3 at once;
- the 1-step Sequence again with the router's app served by uvicorn (raw ASGI, httptools, uvloop) instead
  of the router's own HTTP server.

The added latency is router p50 minus direct p50 (the extra hop to the router and its work); per step it
is divided by the number of steps. The target is under 0.5 ms p50 per hop. CPU per request is the router
process's user+system time over the run, divided by the requests it served.
It also compares HTTP clients for the router's calls (httpx, aiohttp, modelplane's own), POSTing to the stub.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
from results_file import put_section

from modelplane.protocol.http_client import HttpClient, parse_target

ROOT = Path(__file__).resolve().parent.parent
STUB = ROOT / "tests" / "graph" / "stub_service.py"
BODY = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}).encode()
HEADERS = b"Content-Type: application/json\r\n"
SECTION = "## InferenceGraph router"
WARMUP = 200


def start(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"{args} did not start: {line}")
    return proc, line.strip().rsplit(" ", 1)[-1]


def start_router(root: dict, on_uvicorn: bool = False) -> tuple[subprocess.Popen, str]:
    spec = json.dumps({"nodes": {"root": root}})
    if on_uvicorn:
        return start([sys.executable, __file__, "--serve-on-uvicorn", spec])
    return start([sys.executable, "-m", "modelplane", "router", "--graph-json", spec, "--host", "127.0.0.1",
                  "--port", "0", "--drain-seconds", "0"])  # fmt: skip


def serve_on_uvicorn(spec: str) -> None:
    """The router's app behind uvicorn, for comparison with the router's own server."""
    import uvicorn

    from modelplane.graph.server import build_app
    from modelplane.protocol.http_server import HttpRequest

    app = build_app(json.loads(spec), None)

    async def asgi(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = HttpRequest(scope["method"].encode(), scope["raw_path"], scope["headers"], body)
        response = await app.handle(request)
        headers = [(b"content-length", b"%d" % len(response.body))]
        if response.content_type is not None:
            headers.append((b"content-type", response.content_type))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(asgi, http="httptools", lifespan="off", access_log=False, log_level="warning")
    uvloop.run(uvicorn.Server(config).serve(sockets=[sock]))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(cases: dict[str, Callable[[], Awaitable[None]]], requests: int) -> dict[str, list[float]]:
    """Interleaved, so that drift in the machine's load hits every case alike. Milliseconds."""
    for call in cases.values():
        for _ in range(WARMUP):
            await call()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(requests):
        for name, call in cases.items():
            started = time.perf_counter()
            await call()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


async def bench_router(stub_url: str, requests: int) -> list[dict]:
    """One row per graph: direct and router samples, and the router's CPU per request (ms)."""
    client = HttpClient()
    step_url = stub_url + "/success"
    step = parse_target(step_url)
    steps3 = [{"name": f"s{i}", "serviceUrl": step_url} for i in range(3)]
    sequence1 = {"routerType": "Sequence", "steps": steps3[:1]}
    graphs = [
        ("1-step Sequence", 1, sequence1, False),
        ("3-step Sequence", 3, {"routerType": "Sequence", "steps": steps3}, False),
        ("3-way Ensemble", 3, {"routerType": "Ensemble", "steps": steps3}, False),
        ("1-step Sequence, router app on uvicorn", 1, sequence1, True),
    ]
    rows = []
    cases: dict[str, Callable[[], Awaitable[None]]] = {}
    try:
        for name, hops, root, on_uvicorn in graphs:
            proc, url = start_router(root, on_uvicorn)
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

            cases[f"{name} direct"] = direct
            cases[f"{name} router"] = via_router
            rows.append({"name": name, "hops": hops, "proc": proc, "cpu": cpu_seconds(proc.pid)})
        samples = await measure(cases, requests)
        for row in rows:
            row["cpu"] = (cpu_seconds(row["proc"].pid) - row["cpu"]) / (requests + WARMUP) * 1000
            row["direct"] = samples[f"{row['name']} direct"]
            row["router"] = samples[f"{row['name']} router"]
    finally:
        client.close()
        for row in rows:
            row["proc"].terminate()
            row["proc"].wait()
    return rows


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


def report(requests: int, graph_rows: list[dict], client_results, load: tuple[float, float]) -> str:
    lines = [
        f"{requests} requests per case, one at a time, all cases interleaved; times in ms; "
        f"load average {load[0]:.2f} before, {load[1]:.2f} after (2 cores, shared).",
        "",
        row("graph", "direct p50", "router p50", "added p50", "added per step p50", "direct p99", "router p99",
            "router CPU per request"),
        row(*["---"] * 8),
    ]  # fmt: skip
    for graph in graph_rows:
        direct, router = graph["direct"], graph["router"]
        added = statistics.median(router) - statistics.median(direct)
        lines.append(
            row(
                graph["name"],
                f"{statistics.median(direct):.3f}",
                f"{statistics.median(router):.3f}",
                f"{added:.3f}",
                f"{added / graph['hops']:.3f}",
                f"{percentile(direct, 0.99):.3f}",
                f"{percentile(router, 0.99):.3f}",
                f"{graph['cpu']:.3f}",
            )
        )
    lines += [
        "",
        "HTTP clients for the router's calls, one POST to the stub at a time; times in ms:",
        "",
        row("client", "p50", "p99", "p50 / modelplane's"),
        row(*["---"] * 4),
    ]
    own = statistics.median(client_results["modelplane HttpClient"])
    for name, samples in client_results.items():
        p50 = statistics.median(samples)
        lines.append(row(name, f"{p50:.3f}", f"{percentile(samples, 0.99):.3f}", f"{p50 / own:.2f}x"))
    lines += ["", *NOTES]
    return "\n".join(lines) + "\n"


NOTES = [
    "How to read it:",
    "- *added p50* is what a client pays for calling the graph instead of calling the services itself: one more",
    "  hop (client -> router) and the router's work. The target is under 0.5 ms p50 per hop. *added per step*",
    "  spreads it over the steps of the graph.",
    "- Every process (client, router, stub) shares the same 2 cores with the rest of the machine's load, so the",
    "  absolute numbers move with the load average; rows measured in the same run compare fairly.",
    "- *router app on uvicorn* serves the same router app through uvicorn (raw ASGI, httptools, uvloop); the",
    "  difference to the first row is what the router's own HTTP server (`modelplane/protocol/http_server.py`) saves.",
    "- The clients table is why the router calls its steps with its own pooled client",
    "  (`modelplane/protocol/http_client.py`) rather than httpx or aiohttp.",
]


def write_results(text: str, command: str) -> None:
    put_section(SECTION.removeprefix("## "), f"{SECTION}\n\n    {command}\n\n{text}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per case")
    parser.add_argument(
        "--write-results", action="store_true", help=f"update {SECTION!r} in bench/RESULTS.md"
    )
    parser.add_argument("--serve-on-uvicorn", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_on_uvicorn:
        serve_on_uvicorn(args.serve_on_uvicorn)
        return
    load_before = os.getloadavg()[0]
    stub, stub_url = start([sys.executable, str(STUB)])
    try:
        graph_rows = uvloop.run(bench_router(stub_url, args.requests))
        client_results = uvloop.run(bench_clients(stub_url, args.requests))
    finally:
        stub.terminate()
        stub.wait()
    text = report(args.requests, graph_rows, client_results, (load_before, os.getloadavg()[0]))
    print(text)
    if args.write_results:
        write_results(text, f"python3 bench/graph_router.py --requests {args.requests} --write-results")


if __name__ == "__main__":
    main()
