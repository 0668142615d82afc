"""Gateway benchmark (issue 4): the latency the gateway adds in front of a replica.

Each upstream is loaded with wrk twice per row, straight at its port and through the gateway (Host
`iris.default.localhost`), at each concurrency (connections; 1 request in flight per connection, one wrk
thread). The added latency is (through the gateway) - (direct), at p50 and p99. Upstreams:

- fixed        bench/peers/ceiling_app.py: a bare ASGI app on uvicorn + httptools + uvloop that answers a fixed
               V2 response; the cleanest view of the gateway's own cost
- modelplane   `modelplane serve` with an sklearn iris LogisticRegression (trained here), 1 worker

For reference the same runs go through nginx too (one worker, keep-alive to the upstream, no buffering, no
access log; Debian package nginx): what a proxy in C adds on this machine.

The gateway runs in its own process (this file with --serve-gateway) on uvloop, with a one-host route table,
as `modelplane up` runs it on its own loop. All processes and wrk share this machine's cores, so through the
gateway there is one more process competing for them: at concurrency 16 that competition is part of the
figure. Each upstream is checked first with one real request through the gateway (the iris class must be
right); a run with any non-2xx or socket error is void. Rounds interleave direct and gateway runs (the order
alternates) and the tables report the median of the rounds.

gRPC (`--protocols grpc`): `modelplane serve` with the same model and its gRPC port, loaded with unary
`ModelInfer` calls (1 x 4 FP32) by a grpc.aio client in its own process, over one channel (one HTTP/2
connection, as gRPC clients do) with C calls in flight, straight at the replica's gRPC port and through
the gateway's port (authority `iris.default.localhost`). The client's own CPU shares the cores too.

Scaling (`--scaling`, bench/gateway_scaling.py): `modelplane serve --workers R` for each R of --replicas,
loaded with wrk at --connections (128) straight and through the gateway run as N worker processes
(`GatewayWorkers`, as `modelplane up --gateway-workers N`) for each N of --gateway-workers: req/s, p50,
p99, req/s through the gateway over direct, and the CPU per request of the gateway (all its workers) and
of the upstream. R and N default to 1, 2, 4, 8, those up to the machine's cores.

    python3 bench/gateway.py                   # 5 rounds x 5 s per row, prints the tables
    python3 bench/gateway.py --write-results   # ... and rewrites the "## Gateway" section of bench/RESULTS.md
    python3 bench/gateway.py --protocols grpc --write-results   # the "## Gateway, gRPC" section
    python3 bench/gateway.py --scaling --write-results   # the "## Gateway scaling, <cores> cores" section
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import free_port, log
from results_file import put_section
from server_process import group_cpu_seconds

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
WORK = BENCH / ".work" / "gateway"  # model, configs and server logs of the last run
HOST = "iris.default.localhost"
MODEL_NAME = "iris"
# The checkout's modelplane, run as a module: no installed entry point needed (PYTHONPATH is set in main).
MODELPLANE = [sys.executable, "-m", "modelplane"]
IRIS_ROW = [6.3, 3.3, 6.0, 2.5]  # a virginica (class 2)
BODY = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [IRIS_ROW]}]},
    separators=(",", ":"),
)
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["content-type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def http_post(port: int, path: str, body: str, host: str | None = None) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"content-type": "application/json"}
        if host:
            headers["host"] = host
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# --------------------------------------------------------------------------------------------- processes


class Process:
    """A server this benchmark starts in its own process group and stops with everything it forked."""

    def __init__(self, name: str, argv: list[str], port: int, logs: Path) -> None:
        self.name = name
        self.port = port
        self.logfile = logs / f"{name}.log"
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, host: str | None = None, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.logfile.read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {' / '.join(tail)}")
            with contextlib.suppress(OSError):
                if http_post(self.port, f"/v2/models/{MODEL_NAME}/infer", BODY, host)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s; see {self.logfile}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def train_iris(folder: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), folder / "model.joblib")


def start_upstream(name: str, work: Path, workers: int = 1) -> Process:
    port = free_port()
    if name == "fixed":
        argv = [sys.executable, str(BENCH / "peers" / "ceiling_app.py"), "--port", str(port)]
    elif name == "modelplane":
        train_iris(work / "model")
        argv = [*MODELPLANE, "serve", "--model-dir", str(work / "model"), "--model-name", MODEL_NAME]
        argv += ["--runtime", "sklearn", "--http-port", str(port), "--grpc-port", "-1"]
        argv += ["--workers", str(workers)]
    else:
        raise SystemExit(f"unknown upstream {name!r}; choose fixed or modelplane")
    return Process(name, argv, port, work)


def start_gateway(replica_port: int, work: Path, grpc_port: int = 0, workers: int = 0) -> Process:
    """The gateway in a process of its own (see serve_gateway); its log is named after `workers`."""
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-gateway", str(port), str(replica_port)]
    name = f"gateway-{workers}-workers" if workers else "gateway"
    return Process(name, [*argv, str(grpc_port), str(workers)], port, work)


def serve_gateway(port: int, replica_port: int, grpc_port: int = 0, workers: int = 0) -> None:
    """The gateway process: one host routed to one replica (and its gRPC port, if not 0). With
    `workers` 0 the gateway runs on this process's uvloop loop; with N, as N worker processes sharing
    the port (`GatewayWorkers`, as `modelplane up --gateway-workers N` runs it), in this process group."""
    sys.path.insert(0, str(ROOT))
    import asyncio

    import uvloop

    from modelplane.local.gateway.routes import Backend, Route, RouteTable
    from modelplane.local.gateway.server import Gateway, GatewayConfig
    from modelplane.local.gateway.workers import GatewayWorkers

    grpc = (f"127.0.0.1:{grpc_port}",) if grpc_port else None
    backend = Backend("iris-1", (f"127.0.0.1:{replica_port}",), grpc_replicas=grpc)
    routes = RouteTable({HOST: Route((backend,))})

    if workers:
        import threading

        stop_requested = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
        gateway_workers = GatewayWorkers(GatewayConfig(port=port), workers, routes=routes).start()
        stop_requested.wait()
        gateway_workers.stop()
        return

    async def main() -> None:
        gateway = Gateway(GatewayConfig(port=port))
        gateway.update_routes(routes)
        await gateway.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await gateway.stop()

    uvloop.run(main())


NGINX_CONF = """
{user}worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    upstream replica {{ server 127.0.0.1:{replica_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replica;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"""


def start_nginx(replica_port: int, work: Path) -> Process:
    """nginx as a reference reverse proxy: one worker, keep-alive upstream, no buffering, no access log."""
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, work=work, replica_port=replica_port, port=port))
    return Process("nginx", ["nginx", "-c", str(conf), "-e", str(work / "nginx-error.log")], port, work)


# The class each upstream answers for IRIS_ROW (the fixed response always says 0).
EXPECTED_CLASS = {"fixed": 0, "modelplane": 2}


def check_answer(upstream: str, port: int, host: str | None) -> None:
    status, body = http_post(port, f"/v2/models/{MODEL_NAME}/infer", BODY, host)
    if status != 200:
        raise RuntimeError(f"the check request got {status}: {body[:300]!r}")
    data = json.loads(body)["outputs"][0]["data"]
    if data[0] != EXPECTED_CLASS[upstream]:
        raise RuntimeError(f"the check request got class {data[0]}, expected {EXPECTED_CLASS[upstream]}")


# --------------------------------------------------------------------------------------------- load


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    proxy_cpu_us: float = 0.0  # CPU per request of the proxy the run went through
    upstream_cpu_us: float = 0.0  # CPU per request of the upstream


class VoidRun(Exception):
    pass


def run_wrk(
    port: int, concurrency: int, duration: float, script: Path, host: str | None, threads: int = 1
) -> Run:
    cmd = ["wrk", f"-t{min(threads, concurrency)}", f"-c{concurrency}", f"-d{duration:g}s"]
    cmd += ["--timeout", "10s", "-s", str(script)]
    if host:
        cmd += ["-H", f"Host: {host}"]
    cmd.append(f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer")
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(os.environ, BENCH_BODY=BODY), timeout=duration + 60
    )
    match = re.search(r"^BENCH_RESULT (.*)$", result.stdout, re.M)
    if result.returncode != 0 or not match:
        raise VoidRun(f"wrk failed ({result.returncode}): {result.stdout[-300:]} {result.stderr[-300:]}")
    fields = {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}
    errors = {key: fields[key] for key in ("non2xx", "connect", "read", "write", "timeout")}
    if any(errors.values()) or not fields["requests"]:
        raise VoidRun(f"wrk saw errors {errors} in {fields['requests']} requests")
    return Run(
        rps=fields["requests"] / (fields["duration_us"] / 1e6),
        p50_ms=fields["p50_us"] / 1000,
        p99_ms=fields["p99_us"] / 1000,
        requests=fields["requests"],
    )


def measured_run(
    target: Process,
    upstream: Process,
    host: str | None,
    concurrency: int,
    args,
    script: Path,
    threads: int = 1,
) -> Run:
    """A warm-up run, then the measured one at `target`, with the CPU per request of the target's process
    group (when it is a proxy in front of `upstream`) and of the upstream's."""
    run_wrk(target.port, concurrency, args.warmup, script, host, threads)
    before = group_cpu_seconds(target.proc.pid), group_cpu_seconds(upstream.proc.pid)
    run = run_wrk(target.port, concurrency, args.duration, script, host, threads)
    per_request = 1e6 / run.requests
    if target is not upstream:
        run.proxy_cpu_us = (group_cpu_seconds(target.proc.pid) - before[0]) * per_request
    run.upstream_cpu_us = (group_cpu_seconds(upstream.proc.pid) - before[1]) * per_request
    return run


PATHS = ("direct", "modelplane", "nginx")
PATH_LABELS = {"direct": "direct", "modelplane": "modelplane gateway", "nginx": "nginx (reference)"}


def interleaved_rounds(
    name: str,
    targets: dict[str, tuple[Process, str | None]],
    upstream: Process,
    args,
    script: Path,
    concurrencies: list[int] | None = None,
    threads: int = 1,
) -> dict[tuple[int, str], list[Run]]:
    """`args.rounds` rounds of measured runs at each target (its path, the Process and the Host header
    to send it) at each concurrency (default: args.concurrency), the targets' order rotating each
    round; keyed by (concurrency, path)."""
    runs: dict[tuple[int, str], list[Run]] = {}
    paths = list(targets)
    for round_index in range(args.rounds):
        shift = round_index % len(paths)
        for concurrency in concurrencies or args.concurrency:
            for path in paths[shift:] + paths[:shift]:
                target, host = targets[path]
                run = measured_run(target, upstream, host, concurrency, args, script, threads)
                runs.setdefault((concurrency, path), []).append(run)
                log(
                    f"{name:10} round {round_index + 1} c={concurrency:<3} {path:18} "
                    f"{run.rps:8.0f} req/s  p50 {run.p50_ms:.3f} ms  p99 {run.p99_ms:.3f} ms  "
                    f"CPU us/req: proxy {run.proxy_cpu_us:.0f} upstream {run.upstream_cpu_us:.0f}"
                )
    return runs


def measure(upstream: str, args, work: Path, script: Path) -> dict[tuple[int, str], list[Run]]:
    work.mkdir(parents=True, exist_ok=True)
    replica = start_upstream(upstream, work)
    proxies: dict[str, Process] = {}
    try:
        replica.wait_ready()
        proxies["modelplane"] = start_gateway(replica.port, work)
        if "nginx" in args.paths:
            proxies["nginx"] = start_nginx(replica.port, work)
        check_answer(upstream, replica.port, None)
        for proxy in proxies.values():
            proxy.wait_ready(HOST)
            check_answer(upstream, proxy.port, HOST)
        targets = {"direct": (replica, None)} | {path: (proxy, HOST) for path, proxy in proxies.items()}
        runs = interleaved_rounds(upstream, targets, replica, args, script)
    finally:
        for proxy in proxies.values():
            proxy.stop()
        replica.stop()
    return runs


# --------------------------------------------------------------------------------------------- gRPC


CALL_TIMEOUT = 30.0  # seconds a gRPC load call may take before it counts as failed


def grpc_load(target: str, authority: str, concurrency: int, duration: float, warmup: float) -> None:
    """The gRPC load process: `concurrency` ModelInfer calls in flight on one channel; prints a JSON line."""
    sys.path.insert(0, str(ROOT))
    import asyncio

    import grpc

    from modelplane.protocol.grpc import inference_pb2 as pb
    from modelplane.protocol.grpc.service import InferenceStub

    request = pb.ModelInferRequest(model_name=MODEL_NAME)
    request.inputs.add(name="input-0", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend(IRIS_ROW)

    async def main() -> dict:
        options = [("grpc.default_authority", authority)] if authority else []
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            stub = InferenceStub(channel)
            answer = await stub.ModelInfer(request, timeout=CALL_TIMEOUT)
            predicted = list(
                answer.outputs[0].contents.int64_contents or answer.outputs[0].contents.int_contents
            )
            if predicted != [EXPECTED_CLASS["modelplane"]]:
                return {"error": f"the check call got {predicted}"}
            latencies: list[float] = []
            errors = 0
            loop = asyncio.get_running_loop()

            async def caller(until: float, record: bool) -> None:
                nonlocal errors
                while loop.time() < until:
                    started = time.perf_counter()
                    try:
                        await stub.ModelInfer(request, timeout=CALL_TIMEOUT)
                    except grpc.RpcError:  # a call never answered counts here too, not as a hang
                        errors += 1
                    if record:
                        latencies.append(time.perf_counter() - started)

            until = loop.time() + warmup
            await asyncio.gather(*(caller(until, False) for _ in range(concurrency)))
            started = loop.time()
            await asyncio.gather(*(caller(started + duration, True) for _ in range(concurrency)))
            elapsed = loop.time() - started
        latencies.sort()
        return {
            "requests": len(latencies),
            "seconds": elapsed,
            "p50_us": latencies[len(latencies) // 2] * 1e6,
            "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
            "errors": errors,
        }

    print(json.dumps(asyncio.run(main())), flush=True)


def run_grpc_load(target: str, authority: str, concurrency: int, args) -> Run:
    argv = [sys.executable, str(Path(__file__).resolve()), "--grpc-load", target, authority or "-"]
    argv += [str(concurrency), str(args.duration), str(args.warmup)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + args.warmup + 60)
    try:
        fields = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise VoidRun(f"the gRPC load failed ({result.returncode}): {result.stderr[-300:]}") from None
    if "error" in fields or fields["errors"] or not fields["requests"]:
        raise VoidRun(f"the gRPC load saw errors: {fields}")
    return Run(
        rps=fields["requests"] / fields["seconds"],
        p50_ms=fields["p50_us"] / 1000,
        p99_ms=fields["p99_us"] / 1000,
        requests=fields["requests"],
    )


GRPC_PATHS = ("direct", "modelplane")


def measure_grpc(args, work: Path) -> dict[tuple[int, str], list[Run]]:
    """ModelInfer straight at the replica's gRPC port and through the gateway, interleaved by round."""
    runs: dict[tuple[int, str], list[Run]] = {}
    work.mkdir(parents=True, exist_ok=True)
    train_iris(work / "model")
    http_port, grpc_port = free_port(), free_port()
    argv = [
        *MODELPLANE,
        "serve",
        "--model-dir",
        str(work / "model"),
        "--model-name",
        MODEL_NAME,
        "--runtime",
        "sklearn",
    ]
    argv += ["--http-port", str(http_port), "--grpc-port", str(grpc_port), "--workers", "1"]
    replica = Process("modelplane", argv, http_port, work)
    gateway = None
    try:
        replica.wait_ready()
        gateway = start_gateway(http_port, work, grpc_port)
        gateway.wait_ready(HOST)
        targets = {
            "direct": (f"127.0.0.1:{grpc_port}", "", replica),
            "modelplane": (f"127.0.0.1:{gateway.port}", HOST, gateway),
        }
        for round_index in range(args.rounds):
            order = GRPC_PATHS[round_index % 2 :] + GRPC_PATHS[: round_index % 2]
            for concurrency in args.concurrency:
                for path in order:
                    target, authority, process = targets[path]
                    before = group_cpu_seconds(process.proc.pid), group_cpu_seconds(replica.proc.pid)
                    run = run_grpc_load(target, authority, concurrency, args)
                    # CPU over the warm-up and the run, per measured call: an upper bound.
                    per_request = 1e6 / run.requests
                    if path != "direct":
                        run.proxy_cpu_us = (group_cpu_seconds(process.proc.pid) - before[0]) * per_request
                    run.upstream_cpu_us = (group_cpu_seconds(replica.proc.pid) - before[1]) * per_request
                    runs.setdefault((concurrency, path), []).append(run)
                    log(
                        f"grpc       round {round_index + 1} c={concurrency:<3} {path:10} "
                        f"{run.rps:8.0f} calls/s  p50 {run.p50_ms:.3f} ms  p99 {run.p99_ms:.3f} ms"
                    )
    finally:
        if gateway is not None:
            gateway.stop()
        replica.stop()
    return runs


def render_grpc(runs: dict[tuple[int, str], list[Run]], args, started: str, load: tuple) -> str:
    lines = [
        f"Run {started} on {platform.node() or 'this machine'}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average before the run {load[0]:.2f}. {args.rounds} rounds x "
        f"{args.duration:g} s per row (after {args.warmup:g} s warm-up), medians of the rounds. A grpc.aio "
        "client, unary `ModelInfer` (1 x 4 FP32) on one channel with C calls in flight; `modelplane serve` "
        "(sklearn, 1 worker) as the replica; client, gateway and replica share the cores.",
        "",
        "| concurrency | path | calls/s | p50 ms | p99 ms | added p50 ms | p50 ratio | calls/s ratio "
        "| gateway CPU µs/call | replica CPU µs/call |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency in args.concurrency:
        direct = runs[(concurrency, "direct")]
        d50, drps = median(direct, "p50_ms"), median(direct, "rps")
        for path in GRPC_PATHS:
            through = runs[(concurrency, path)]
            p50, rps = median(through, "p50_ms"), median(through, "rps")
            extra = (
                " | | | | "
                if path == "direct"
                else f" | **{p50 - d50:+.3f}** | {p50 / d50:.2f} | {rps / drps:.2f} | "
                f"{median(through, 'proxy_cpu_us'):.0f}"
            )
            lines.append(
                f"| {concurrency} | {PATH_LABELS[path]} | {rps:.0f} | {p50:.3f} | "
                f"{median(through, 'p99_ms'):.3f}{extra} | {median(through, 'upstream_cpu_us'):.0f} |"
            )
    return "\n".join(lines)


GRPC_NOTES = """How to read it:
- The ratios are through the gateway over direct (p50 latency, calls per second), medians of the rounds.
- The gateway relays each call on modelplane's own HTTP/2 connection (modelplane/protocol/http2):
  it decodes the headers of both sides (HPACK; a repeated header block is decoded once), re-encodes
  them, and passes the data frames on under end-to-end flow control. Until 2026-11-24 it ran on the
  `h2` package, and a call cost it about 1 ms of CPU (+1.06 ms p50 at c=1, +10.3 ms at c=16 on
  2026-11-23 21:50 UTC). At concurrency 16 the gateway competes with the replica and the client for
  the 2 cores.
- The CPU columns count the warm-up second too, per measured call: an upper bound.
- The machine is shared with other work (see the load average): runs vary by 2x and more."""


def write_grpc_section(table: str, command: str) -> None:
    section = (
        "## Gateway, gRPC\n\n"
        "gRPC `ModelInfer` through `modelplane up`'s gateway (HTTP/2 on the REST port) against straight to the "
        f"replica's gRPC port.\nProduced by `{command}`.\n\n{table}\n\n{GRPC_NOTES}\n"
    )
    put_section("Gateway, gRPC", section)


# --------------------------------------------------------------------------------------------- report


def median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def render(results: dict[str, dict], args, started: str, load: tuple[float, float, float]) -> str:
    lines = [
        f"Run {started} on {platform.node() or 'this machine'}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {nginx_version()}, load average before the run {load[0]:.2f}. "
        f"{args.rounds} rounds x {args.duration:g} s per row (after {args.warmup:g} s warm-up), medians of the "
        "rounds. wrk, one thread, `POST /v2/models/iris/infer` (JSON, 1 x 4 FP32), 1 request in flight per "
        "connection; the proxies, the upstream and wrk share the cores.",
        "",
        "| upstream | concurrency | path | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
        "| proxy CPU µs/req | upstream CPU µs/req |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for upstream, runs in results.items():
        for concurrency in args.concurrency:
            direct = runs[(concurrency, "direct")]
            d50, d99 = median(direct, "p50_ms"), median(direct, "p99_ms")
            for path in PATHS:
                if (concurrency, path) not in runs:
                    continue
                through = runs[(concurrency, path)]
                p50, p99 = median(through, "p50_ms"), median(through, "p99_ms")
                added = "" if path == "direct" else f"**{p50 - d50:+.3f}** | {p99 - d99:+.3f}"
                proxy_cpu = "" if path == "direct" else f"{median(through, 'proxy_cpu_us'):.0f}"
                lines.append(
                    f"| {upstream} | {concurrency} | {PATH_LABELS[path]} | {median(through, 'rps'):.0f} "
                    f"| {p50:.3f} | {p99:.3f} | {added or ' | '} | {proxy_cpu} "
                    f"| {median(through, 'upstream_cpu_us'):.0f} |"
                )
    return "\n".join(lines)


def nginx_version() -> str:
    if not shutil.which("nginx"):
        return "no nginx"
    result = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    return (result.stderr.strip() or result.stdout.strip()).replace("nginx version: ", "")


READING_NOTES = """How to read it:
- At concurrency 1 the added latency is the proxy's own work plus two more hops over loopback (a read
  and a write each way, and the wake-ups that go with them). nginx (C, one worker, keep-alive to the
  upstream, no buffering) shows what those hops cost on this machine with next to no work on top; in
  KServe the same place is taken by Envoy (Istio's gateway) and, in Serverless mode, Knative's
  activator or queue-proxy as well.
- At concurrency 16 wrk, the proxy and the upstream all want CPU on the same 2 cores. The CPU columns
  (user + system time of each process group over the run, per request) compare the proxies' cost with
  the upstream's: a proxy reads and writes twice per request where a server does it once. Through a
  proxy there is less CPU left for the upstream, so the added latency there is mostly that
  competition. On a machine with spare cores the gateway runs beside the replicas instead of taking
  from them.
- The machine is shared with other work (see the load average): single runs vary by 2-3x, hence the
  interleaved rounds and medians. Negative or large p99 differences are that noise; under load this
  machine also retransmits some loopback TCP segments (`/proc/net/snmp` RetransSegs grows during runs),
  and each one costs 200 ms or more, which a proxied request, with twice the segments, meets more often."""


def write_section(table: str, command: str) -> None:
    section = (
        "## Gateway\n\n"
        "The latency `modelplane up`'s gateway adds between a client and a replica (target: under 0.5 ms at p50).\n"
        f"Produced by `{command}`.\n\n{table}\n\n{READING_NOTES}\n"
    )
    put_section("Gateway", section)


def positive(text: str) -> int:
    """A whole number of at least 1 (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def counts(text: str) -> list[int]:
    """A comma-separated list of whole numbers of at least 1, like 1,2,4 (an argparse type)."""
    return [positive(part) for part in text.split(",")]


def now_utc() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def command_line() -> str:
    """How this run was started, for RESULTS.md."""
    return " ".join(["python3 bench/gateway.py", *sys.argv[1:]])


def require_wrk() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: run `bash bench/setup.sh` (Debian package wrk)")


def fresh_work(folder: Path) -> Path:
    """Empties `folder` (what the last run left there) and writes wrk's script into it."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT)
    return script


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up before each run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 16])
    parser.add_argument("--upstream", type=lambda s: s.split(","), default=["fixed", "modelplane"])
    parser.add_argument(
        "--paths",
        type=lambda s: ["direct", "modelplane", *s.split(",")],
        default=["direct", "modelplane", "nginx"],
        help="reference proxies to run besides direct and the gateway: nginx (default) or none",
    )
    parser.add_argument(
        "--write-results", action="store_true", help='rewrite "## Gateway" in bench/RESULTS.md'
    )
    parser.add_argument(
        "--protocols",
        type=lambda s: s.split(","),
        default=["rest"],
        help="rest (wrk, the default), grpc (ModelInfer, direct and through the gateway), or rest,grpc",
    )
    scaling = parser.add_argument_group(
        "scaling",
        "the scaling table (--scaling; bench/gateway_scaling.py); --duration, --warmup, --rounds apply",
    )
    scaling.add_argument(
        "--scaling",
        action="store_true",
        help="req/s and p99 direct and through N gateway workers for R replicas; with --write-results, "
        'rewrites "## Gateway scaling, <cores> cores"',
    )
    scaling.add_argument(
        "--replicas", type=counts, help="upstream worker processes R (default 1,2,4,8 up to the cores)"
    )
    scaling.add_argument(
        "--gateway-workers", type=counts, help="gateway worker processes N (default 1,2,4,8 up to the cores)"
    )
    scaling.add_argument("--connections", type=counts, help="wrk connections (default 128)")
    scaling.add_argument(
        "--wrk-threads", type=positive, help="wrk threads (default: one per 8 cores, 1 to 4)"
    )
    parser.add_argument("--serve-gateway", nargs="+", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--grpc-load", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    scaling_options = (args.replicas, args.gateway_workers, args.connections, args.wrk_threads)
    if not args.scaling and any(option is not None for option in scaling_options):
        parser.error("--replicas, --gateway-workers, --connections and --wrk-threads go with --scaling")
    if args.serve_gateway:
        serve_gateway(*args.serve_gateway)
        return 0
    if args.grpc_load:
        target, authority, concurrency, duration, warmup = args.grpc_load
        grpc_load(
            target, "" if authority == "-" else authority, int(concurrency), float(duration), float(warmup)
        )
        return 0
    # Every process started from here runs this checkout's modelplane, the gateway's workers too.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    if args.scaling:
        from gateway_scaling import run_scaling

        return run_scaling(args)
    if "grpc" in args.protocols:
        started = now_utc()
        load = os.getloadavg()
        table = render_grpc(measure_grpc(args, WORK / "grpc"), args, started, load)
        print(table)
        if args.write_results:
            write_grpc_section(table, command_line())
        if "rest" not in args.protocols:
            return 0
    require_wrk()
    if "nginx" in args.paths and not shutil.which("nginx"):
        log("nginx is missing (Debian package nginx): measuring without the reference proxy")
        args.paths.remove("nginx")
    started = now_utc()
    load = os.getloadavg()
    results = {}
    script = fresh_work(WORK)
    for upstream in args.upstream:
        try:
            results[upstream] = measure(upstream, args, WORK / upstream, script)
        except (RuntimeError, VoidRun) as exc:
            log(f"{upstream}: void ({exc})")
    if not results:
        return 1
    table = render(results, args, started, load)
    print(table)
    if args.write_results:
        write_section(table, command_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
