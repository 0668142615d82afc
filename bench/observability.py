"""Observability benchmark: what payload logging and tracing cost a request.

`modelplane serve` (an sklearn iris LogisticRegression, 1 worker) behind the gateway (in a process of
its own, as bench/gateway.py runs it), loaded by wrk with V1 `:predict` requests at concurrency 16
(16 connections, one request in flight each, one wrk thread), in three setups side by side:

- off        no logger, no tracing: the reference
- logging    the route's `logger` (mode all): two CloudEvents per request, POSTed by the gateway's
             payload logger to a receiver on this machine (its own process, on modelplane's HTTP server,
             answering 202); the events the logger dropped, if any, are reported under the table
- logging-nginx  the same, to nginx (Debian's, one process) answering 202: a receiver that costs the
             shared cores less, so that the row shows more of the logger's own cost
- tracing    the gateway and the replica started with OTEL_EXPORTER_OTLP_ENDPOINT pointing at the same
             receiver (OTLP over HTTP, answered 200): a span per hop, and one per model stage, for
             every request
- sampled    the same with OTEL_TRACES_SAMPLER=parentbased_traceidratio and OTEL_TRACES_SAMPLER_ARG=0.1:
             one request in ten is traced (the gateway decides, the replica follows its traceparent)

Rounds interleave the setups (the order rotates); the table reports the median of the rounds, and each
setup's throughput and p99 against `off`, and the CPU time the gateway's and the replica's processes, and
the receiver's, spent per request. All processes and wrk share this machine's cores, so the CPU the
logger, the receiver and the exporter spend shows as throughput lost. Payload events the logger dropped
(its queue full: the receiver could not keep up) are counted, not hidden.

    python3 bench/observability.py                   # 5 rounds x 5 s per setup, prints the table
    python3 bench/observability.py --write-results   # ... and rewrites the "## Observability" section of RESULTS.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
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
WORK = BENCH / ".work" / "observability"
HOST = "iris.default.localhost"
MODEL_NAME = "iris"
BODY = json.dumps({"instances": [[6.3, 3.3, 6.0, 2.5]]}, separators=(",", ":"))
SETUPS = ("off", "logging", "logging-nginx", "tracing", "sampled")
LOGGING_SETUPS = ("logging", "logging-nginx")
NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {work}/receiver-nginx.pid;
error_log {work}/receiver-nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/receiver-nginx-tmp;
    keepalive_requests 1000000000;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        location = /ready {{ return 200; }}
        location / {{ return 202; }}
    }}
}}
"""
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["content-type"] = "application/json"
wrk.headers["Host"] = os.getenv("BENCH_HOST")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_us: dict[str, float] | None = None  # CPU time per request of the gateway, replica and receiver


class Process:
    """A server this benchmark starts in its own process group, and stops with all it forked."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.port = port
        self.logfile = WORK / f"{name}.log"
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            )

    def wait_ready(self, path: str, host: str | None = None, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.logfile}")
            with contextlib.suppress(OSError):
                if request(self.port, "POST" if "predict" in path else "GET", path, host)[0] == 200:
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


def request(port: int, method: str, path: str, host: str | None = None) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"content-type": "application/json", **({"host": host} if host else {})}
        connection.request(method, path, body=BODY if method == "POST" else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# ---- the processes -------------------------------------------------------------------------------


def serve_receiver(port: int) -> None:
    """A sink for CloudEvents (202) and OTLP exports (200), on modelplane's own HTTP server; counts what
    it took (`GET /count`)."""
    sys.path.insert(0, str(ROOT))
    import asyncio
    import socket

    import uvloop

    from modelplane.protocol import http_server

    taken = {"events": 0, "exports": 0}

    async def handle(req: http_server.HttpRequest) -> http_server.HttpResponse:
        if req.method == b"GET":
            return http_server.HttpResponse(200, json.dumps(taken).encode(), b"application/json")
        if req.path.startswith(b"/v1/traces"):
            taken["exports"] += 1
            return http_server.HttpResponse(200, b"", b"application/x-protobuf")
        taken["events"] += 1
        return http_server.HttpResponse(202)

    async def main() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
        shutdown = http_server.Shutdown(1)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, shutdown.request)
        await http_server.serve(handle, sock, http_server.ServerLimits(None, 75), shutdown)

    uvloop.run(main())


def serve_gateway(port: int, replica_port: int, log_url: str) -> None:
    """The gateway process: one host, one replica; its route logs to `log_url` unless it is `-`."""
    sys.path.insert(0, str(ROOT))
    import asyncio

    import uvloop

    from modelplane.local.gateway.routes import Backend, Route, RouteTable
    from modelplane.local.gateway.server import Gateway, GatewayConfig
    from modelplane.telemetry import tracing
    from modelplane.telemetry.payload_events import PayloadLogSpec

    async def main() -> None:
        tracing.configure("modelplane-gateway")
        gateway = Gateway(GatewayConfig(port=port))
        log = None
        if log_url != "-":
            log = PayloadLogSpec(log_url, "all", MODEL_NAME, "default", "predictor")
        backend = Backend("iris-predictor-00001", (f"127.0.0.1:{replica_port}",), payload_log=log)
        gateway.update_routes(RouteTable({HOST: Route((backend,))}))
        await gateway.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        stats = gateway.payload_log.stats()
        await gateway.stop()
        for sink in stats:
            print(f"payload log {sink.sink}: sent {sink.sent}, dropped {sink.dropped}", flush=True)
        await asyncio.to_thread(tracing.shutdown)

    uvloop.run(main())


def train_iris(folder: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), folder / "model.joblib")


def start_nginx_receiver() -> Process:
    port = free_port()
    (WORK / "receiver-nginx-tmp").mkdir(exist_ok=True)
    conf = WORK / "receiver-nginx.conf"
    conf.write_text(NGINX_CONF.format(work=WORK, port=port))
    argv = ["nginx", "-c", str(conf), "-e", str(WORK / "receiver-nginx-error.log")]
    return Process("receiver-nginx", argv, port)


def start_setup(setup: str, receiver_port: int, nginx_port: int) -> tuple[Process, Process]:
    env = {}
    if setup in ("tracing", "sampled"):
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver_port}"}
    if setup == "sampled":
        env |= {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    replica_port = free_port()
    argv = [sys.executable, "-m", "modelplane", "serve", "--model-dir", str(WORK / "model")]
    argv += ["--model-name", MODEL_NAME, "--runtime", "sklearn", "--http-port", str(replica_port)]
    argv += ["--grpc-port", "-1"]
    replica = Process(f"replica-{setup}", argv, replica_port, {**env, "OTEL_SERVICE_NAME": "iris-predictor"})
    gateway_port = free_port()
    log_url = {
        "logging": f"http://127.0.0.1:{receiver_port}/events",
        "logging-nginx": f"http://127.0.0.1:{nginx_port}/events",
    }.get(setup, "-")
    argv = [sys.executable, __file__, "--serve-gateway", str(gateway_port), str(replica_port), log_url]
    gateway = Process(f"gateway-{setup}", argv, gateway_port, env)
    return replica, gateway


# ---- the load ------------------------------------------------------------------------------------


def run_wrk(port: int, duration: float, concurrency: int, script: Path) -> Run:
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", "--timeout", "10s", "-s", str(script)]
    cmd.append(f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}:predict")
    env = {**os.environ, "BENCH_BODY": BODY, "BENCH_HOST": HOST}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    found = re.search(r"^BENCH_RESULT (.*)$", result.stdout, re.M)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout[-300:]} {result.stderr[-300:]}")
    fields = {k: float(v) for k, v in (kv.split("=") for kv in found.group(1).split())}
    errors = {k: int(fields[k]) for k in ("non2xx", "connect", "read", "write", "timeout")}
    if any(errors.values()):
        raise RuntimeError(f"wrk saw errors {errors} in {int(fields['requests'])} requests")
    return Run(
        fields["requests"] / (fields["duration_us"] / 1e6),
        fields["p50_us"] / 1000,
        fields["p99_us"] / 1000,
        int(fields["requests"]),
    )


def measure(args) -> tuple[dict[str, list[Run]], int, int]:
    WORK.mkdir(parents=True, exist_ok=True)
    train_iris(WORK / "model")
    script = WORK / "load.lua"
    script.write_text(WRK_SCRIPT)
    receiver_port = free_port()
    receiver = Process(
        "receiver", [sys.executable, __file__, "--serve-receiver", str(receiver_port)], receiver_port
    )
    nginx = start_nginx_receiver()
    processes = [receiver, nginx]
    runs: dict[str, list[Run]] = {setup: [] for setup in SETUPS}
    try:
        receiver.wait_ready("/count")
        nginx.wait_ready("/ready")
        gateways, replicas = {}, {}
        for setup in SETUPS:
            replica, gateway = start_setup(setup, receiver_port, nginx.port)
            processes += [replica, gateway]
            replica.wait_ready(f"/v1/models/{MODEL_NAME}:predict")
            gateway.wait_ready(f"/v1/models/{MODEL_NAME}:predict", HOST)
            gateways[setup], replicas[setup] = gateway, replica
        for setup in SETUPS:
            run_wrk(gateways[setup].port, args.warmup, args.concurrency, script)
        for round_index in range(args.rounds):
            shift = round_index % len(SETUPS)
            for setup in SETUPS[shift:] + SETUPS[:shift]:
                watched = {
                    "gateway": gateways[setup].proc.pid,
                    "replica": replicas[setup].proc.pid,
                    "receiver": (nginx if setup == "logging-nginx" else receiver).proc.pid,
                }
                before = {name: group_cpu_seconds(pgid) for name, pgid in watched.items()}
                run = run_wrk(gateways[setup].port, args.duration, args.concurrency, script)
                run.cpu_us = {
                    name: (group_cpu_seconds(pgid) - before[name]) / run.requests * 1e6
                    for name, pgid in watched.items()
                }
                runs[setup].append(run)
                log(f"round {round_index + 1} {setup}: {run.rps:.0f} req/s, p99 {run.p99_ms:.2f} ms")
        taken = json.loads(request(receiver_port, "GET", "/count")[1])
        log(f"the receiver took {taken['events']} events and {taken['exports']} OTLP exports")
    finally:
        for process in reversed(processes):
            process.stop()
    sent = dropped = 0
    for setup in LOGGING_SETUPS:
        gateway_log = (WORK / f"gateway-{setup}.log").read_text()
        sent += int(re.search(r"sent (\d+)", gateway_log).group(1))
        dropped += sum(int(count) for count in re.findall(r"': (\d+)", gateway_log))
    log(f"payload events: {sent} sent, {dropped} dropped")
    return runs, sent, dropped


def table(runs: dict[str, list[Run]], sent: int, dropped: int) -> str:
    base_rps = statistics.median(run.rps for run in runs["off"])
    base_p99 = statistics.median(run.p99_ms for run in runs["off"])
    lines = [
        "| setup | req/s | vs off | p50 ms | p99 ms | p99 vs off | CPU µs/request: gateway | replica | receiver | all three |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for setup in SETUPS:
        rps = statistics.median(run.rps for run in runs[setup])
        p50 = statistics.median(run.p50_ms for run in runs[setup])
        p99 = statistics.median(run.p99_ms for run in runs[setup])
        cpu = {
            name: statistics.median(run.cpu_us[name] for run in runs[setup]) for name in runs[setup][0].cpu_us
        }
        lines.append(
            f"| {setup} | {rps:.0f} | {rps / base_rps:.2f} | {p50:.2f} | {p99:.2f} | {p99 / base_p99:.2f} "
            f"| {cpu['gateway']:.0f} | {cpu['replica']:.0f} | {cpu['receiver']:.0f} | {sum(cpu.values()):.0f} |"
        )
    lines.append("")
    lines.append(f"Payload events of the logging runs (warm-up included): {sent} sent, {dropped} dropped.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if args.serve_receiver:
        return serve_receiver(args.serve_receiver)
    if args.serve_gateway:
        port, replica_port, log_url = args.serve_gateway
        return serve_gateway(int(port), int(replica_port), log_url)
    load = os.getloadavg()[0]
    runs, sent, dropped = measure(args)
    result = table(runs, sent, dropped)
    print(result)
    if args.write_results:
        command = f"python3 bench/observability.py --rounds {args.rounds} --duration {args.duration:g}"
        header = (
            f"## Observability\n\n`{command}` ({datetime.date.today()}, {platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, load average before the run "
            f"{load:.2f}): `modelplane serve` (sklearn iris) "
            f"behind the gateway, wrk at concurrency {args.concurrency}, V1 predict; medians of "
            f"{args.rounds} rounds. `logging`: the route's logger (mode all) sends two CloudEvents per "
            "request to a local receiver (modelplane's HTTP server; `logging-nginx`: nginx); `tracing`: the gateway and the replica export a span per hop "
            "and per stage of every request over OTLP/HTTP to the same receiver; `sampled`: one request "
            "in ten traced. CPU: the processes' user and system time per request.\n\n"
        )
        put_section("Observability", header + result + "\n")


if __name__ == "__main__":
    main()
