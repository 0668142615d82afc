"""The gateway-to-replica hop over a Unix socket against TCP: what `modelplane up` gains by reaching its
`modelplane serve` replicas on `--uds`.

Two paths side by side, each a `modelplane serve` replica (the sklearn iris model, 1 worker) serving
REST on a loopback port and on a Unix socket, behind a gateway in a process of its own (as
bench/gateway.py runs it): one gateway's route reaches its replica on the port, the other's on the
socket. wrk sends V1 `:predict` requests through both at the same time, at concurrency 8 each, so that
both see the same machine (on a shared machine whose speed drifts from one second to the next, runs
one after the other do not). The table gives the medians of the rounds (req/s, latency, and the CPU
time each gateway's and replica's process spent per request) and, against TCP, the median of each
round's own ratio.

    python3 bench/unix_socket.py                    # 10 rounds x 5 s, prints the table
    python3 bench/unix_socket.py --write-results    # ... and rewrites "## Unix sockets" in RESULTS.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import platform
import statistics
import sys
from pathlib import Path

import observability
from harness import free_port, log
from observability import HOST, MODEL_NAME, WRK_SCRIPT, Process, run_wrk, train_iris
from results_file import put_section
from server_process import group_cpu_seconds

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "unix-socket"
HOPS = ("tcp", "unix socket")
# What each row of a round holds, in this order.
RPS, P50, P99, GATEWAY_US, REPLICA_US = range(5)


def serve_gateway(port: int, replica_port: int, unix_socket: str) -> None:
    """The gateway process: one host routed to the replica, on its port or (given one) its socket."""
    sys.path.insert(0, str(ROOT))
    import asyncio
    import signal

    import uvloop

    from modelplane.local.gateway.routes import Backend, Route, RouteTable
    from modelplane.local.gateway.server import Gateway, GatewayConfig

    async def run() -> None:
        gateway = Gateway(GatewayConfig(port=port))
        reached_at = None if unix_socket == "-" else unix_socket
        backend = Backend("iris-predictor-00001", (f"127.0.0.1:{replica_port}",), unix_sockets=(reached_at,))
        gateway.update_routes(RouteTable({HOST: Route((backend,))}))
        await gateway.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await gateway.stop()

    uvloop.run(run())


def measure(args) -> dict[str, list[tuple[float, ...]]]:
    """Both hops loaded at the same time, each with its own replica and gateway: on a machine whose
    speed drifts from one second to the next, the two see the same machine, where runs one after the
    other do not."""
    WORK.mkdir(parents=True, exist_ok=True)
    observability.WORK.mkdir(parents=True, exist_ok=True)  # where its Process keeps the logs
    train_iris(WORK / "model")
    script = WORK / "load.lua"
    script.write_text(WRK_SCRIPT)
    processes: list[Process] = []
    paths: dict[str, tuple[Process, Process]] = {}
    rows: dict[str, list[tuple[float, ...]]] = {hop: [] for hop in HOPS}
    try:
        for hop in HOPS:
            unix_socket = str(WORK / f"replica-{hop.replace(' ', '-')}.sock")
            replica_port = free_port()
            argv = [sys.executable, "-m", "modelplane", "serve", "--model-dir", str(WORK / "model")]
            argv += ["--model-name", MODEL_NAME, "--runtime", "sklearn", "--http-port", str(replica_port)]
            argv += ["--grpc-port", "-1", "--uds", unix_socket]
            replica = Process(f"replica-{hop.replace(' ', '-')}", argv, replica_port)
            processes.append(replica)
            replica.wait_ready(f"/v1/models/{MODEL_NAME}:predict")
            port = free_port()
            given = unix_socket if hop == "unix socket" else "-"
            argv = [sys.executable, __file__, "--serve-gateway", str(port), str(replica_port), given]
            gateway = Process(f"gateway-{hop.replace(' ', '-')}", argv, port)
            processes.append(gateway)
            gateway.wait_ready(f"/v1/models/{MODEL_NAME}:predict", HOST)
            paths[hop] = (replica, gateway)
        for _, gateway in paths.values():
            run_wrk(gateway.port, args.warmup, args.concurrency, script)
        for round_index in range(args.rounds):
            pids = {hop: (gateway.proc.pid, replica.proc.pid) for hop, (replica, gateway) in paths.items()}
            before = {hop: [group_cpu_seconds(pid) for pid in both] for hop, both in pids.items()}
            with concurrent.futures.ThreadPoolExecutor(len(HOPS)) as pool:
                runs = dict(
                    zip(
                        HOPS,
                        pool.map(
                            lambda hop: run_wrk(paths[hop][1].port, args.duration, args.concurrency, script),
                            HOPS,
                        ),
                        strict=True,
                    )
                )
            for hop, run in runs.items():
                gateway_us, replica_us = (
                    (group_cpu_seconds(pid) - was) / run.requests * 1e6
                    for pid, was in zip(pids[hop], before[hop], strict=True)
                )
                rows[hop].append((run.rps, run.p50_ms, run.p99_ms, gateway_us, replica_us))
                log(f"round {round_index + 1} {hop}: {run.rps:.0f} req/s, gateway {gateway_us:.1f} µs/req")
    finally:
        for process in reversed(processes):
            process.stop()
    return rows


def render(rows, args, started: str, load: tuple) -> str:
    def median(hop: str, field: int) -> float:
        return statistics.median(row[field] for row in rows[hop])

    def versus_tcp(field: int) -> float:
        pairs = zip(rows["tcp"], rows["unix socket"], strict=True)
        return statistics.median(socket_row[field] / tcp_row[field] for tcp_row, socket_row in pairs)

    lines = [
        "## Unix sockets",
        "",
        "The gateway-to-replica hop over the replica's Unix socket (`modelplane serve --uds`, what",
        "`modelplane up` gives its replicas) against its loopback TCP port, through the same gateway code.",
        f"Produced by `python3 bench/unix_socket.py --rounds {args.rounds} --duration {args.duration:g} "
        "--write-results`.",
        "",
        f"Run {started} on {platform.node() or 'this machine'}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average before the run {load[0]:.2f}. Per path a `modelplane "
        "serve` replica (sklearn iris, 1 worker) and a gateway in a process of its own; both paths loaded "
        f"at once, wrk at concurrency {args.concurrency} each (V1 `:predict`), {args.rounds} rounds x "
        f'{args.duration:g} s after {args.warmup:g} s of warm-up; medians of the rounds, and each "vs TCP" '
        "the median of the rounds' own ratios. CPU: the process's user and system time per request.",
        "",
        "| hop | req/s | vs TCP | p50 ms | p99 ms | CPU µs/request: gateway | vs TCP | replica | vs TCP |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for hop in HOPS:
        ratios = [1.0] * 3 if hop == "tcp" else [versus_tcp(field) for field in (RPS, GATEWAY_US, REPLICA_US)]
        lines.append(
            f"| {hop} | {median(hop, RPS):,.0f} | {ratios[0]:.2f} | {median(hop, P50):.2f} | "
            f"{median(hop, P99):.2f} | {median(hop, GATEWAY_US):.1f} | {ratios[1]:.2f} | "
            f"{median(hop, REPLICA_US):.1f} | {ratios[2]:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve-gateway", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8, help="connections per path")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if args.serve_gateway:
        port, replica_port, unix_socket = args.serve_gateway
        serve_gateway(int(port), int(replica_port), unix_socket)
        return
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    table = render(measure(args), args, started, load)
    print(table)
    if args.write_results:
        put_section("Unix sockets", table)


if __name__ == "__main__":
    main()
