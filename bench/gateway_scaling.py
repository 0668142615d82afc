"""The gateway's scaling table (`python3 bench/gateway.py --scaling`): how much of a replica set's
throughput reaches clients through the gateway as it runs in N worker processes.

For each R of `--replicas`, `modelplane serve --workers R` with the sklearn iris model of
bench/gateway.py is loaded with wrk (`--connections`, one request in flight each, V2 REST iris body),
straight at its port and through the gateway for each N of `--gateway-workers`: `GatewayWorkers` with
N worker processes sharing one port, as `modelplane up --gateway-workers N` runs it, in a process of
its own with a one-host route table to that upstream. Every gateway of an R is started before the
first run and checked with one real request (the iris class must be right). Rounds interleave the
direct run and the runs through each gateway (the order rotates each round); the table reports the
medians of the rounds: req/s, p50, p99, the added p50, req/s through the gateway over direct, and
the CPU seconds per request of the gateway's process group (the process holding the port and all its
workers) and of the upstream's. A run with any non-2xx answer or socket error voids its R.
"""

from __future__ import annotations

import os
import platform
import sys

from gateway import (
    HOST,
    ROOT,
    WORK,
    Process,
    Run,
    VoidRun,
    check_answer,
    command_line,
    fresh_work,
    interleaved_rounds,
    median,
    now_utc,
    require_wrk,
    start_gateway,
    start_upstream,
)
from harness import log
from results_file import put_section

DEFAULT_COUNTS = (1, 2, 4, 8)  # replicas and gateway workers, up to the machine's cores
DIRECT = 0  # the gateway workers a direct run goes through
TARGET_REPLICAS, TARGET_CORES, TARGET_RATIO = 8, 16, 0.70


def up_to_cores(values: list[int] | None) -> list[int]:
    """The values asked for, or the default ones that do not exceed the machine's cores."""
    return values or [count for count in DEFAULT_COUNTS if count <= (os.cpu_count() or 1)]


def measure_replicas(replicas: int, args, work, script) -> dict[tuple[int, str], list[Run]]:
    """The rounds against one `modelplane serve --workers <replicas>`, keyed by (connections, path_label)."""
    work.mkdir(parents=True, exist_ok=True)
    upstream = start_upstream("modelplane", work, replicas)
    gateways: dict[int, Process] = {}
    try:
        upstream.wait_ready()
        check_answer("modelplane", upstream.port, None)
        for workers in args.gateway_workers:
            gateways[workers] = start_gateway(upstream.port, work, workers=workers)
        for gateway in gateways.values():
            gateway.wait_ready(HOST)
            check_answer("modelplane", gateway.port, HOST)
        targets = {path_label(DIRECT): (upstream, None)}
        targets |= {path_label(workers): (gateway, HOST) for workers, gateway in gateways.items()}
        runs = interleaved_rounds(
            f"R={replicas}", targets, upstream, args, script, args.connections, args.wrk_threads
        )
    finally:
        for gateway in gateways.values():
            gateway.stop()
        upstream.stop()
    return runs


def path_label(workers: int) -> str:
    if workers == DIRECT:
        return "direct"
    return f"gateway, {workers} worker{'s' if workers > 1 else ''}"


def render(results: dict[int, dict | str], args, started: str, load: float) -> str:
    threads = f"{args.wrk_threads} thread{'s' if args.wrk_threads > 1 else ''}"
    lines = [
        f"Run {started} on {platform.node() or 'this machine'}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average before the run {load:.2f}. {args.rounds} rounds x "
        f"{args.duration:g} s per row (after {args.warmup:g} s warm-up), medians of the rounds. wrk, {threads}, "
        "`POST /v2/models/iris/infer` (JSON, 1 x 4 FP32), one request in flight per connection, straight at "
        "`modelplane serve --workers R` (sklearn iris) and through the gateway in N worker processes "
        "(`modelplane up --gateway-workers N`) with a one-host route table to it; wrk, the gateway and the "
        "upstream share the cores.",
        "",
        "| replicas R | connections | path | req/s | p50 ms | p99 ms | added p50 ms | req/s through ÷ direct "
        "| gateway CPU µs/req | upstream CPU µs/req |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for replicas, runs in results.items():
        if isinstance(runs, str):
            lines.append(f"| {replicas} | | void: {runs} | | | | | | | |")
            continue
        for connections in args.connections:
            direct = runs[(connections, path_label(DIRECT))]
            d50, drps = median(direct, "p50_ms"), median(direct, "rps")
            for workers in [DIRECT, *args.gateway_workers]:
                through = runs[(connections, path_label(workers))]
                p50, rps = median(through, "p50_ms"), median(through, "rps")
                compared = (
                    " | | | "
                    if workers == DIRECT
                    else f" | {p50 - d50:+.3f} | **{rps / drps:.2f}** | {median(through, 'proxy_cpu_us'):.0f}"
                )
                lines.append(
                    f"| {replicas} | {connections} | {path_label(workers)} | {rps:.0f} | {p50:.3f} "
                    f"| {median(through, 'p99_ms'):.3f}{compared} | {median(through, 'upstream_cpu_us'):.0f} |"
                )
    verdict = target_verdict(results, args)
    return "\n".join([*lines, "", verdict] if verdict else lines)


def target_verdict(results: dict[int, dict | str], args) -> str:
    """The sentence on the target: with 8 replicas, at least 70% of the direct req/s through the
    gateway, on a machine of at least 16 cores (measured at the most connections of the run)."""
    runs = results.get(TARGET_REPLICAS)
    if not isinstance(runs, dict):
        return ""
    sys.path.insert(0, str(ROOT))
    from modelplane.local.gateway.workers import default_workers

    connections = max(args.connections)
    direct = median(runs[(connections, path_label(DIRECT))], "rps")
    ratios = {w: median(runs[(connections, path_label(w))], "rps") / direct for w in args.gateway_workers}
    best = max(ratios, key=ratios.get)
    cores = os.cpu_count() or 1
    parts = [
        f"Target: with {TARGET_REPLICAS} replicas the gateway delivers at least {TARGET_RATIO:.0%} of the direct "
        f"req/s on a machine of at least {TARGET_CORES} cores. Here ({cores} cores, {connections} connections): "
        f"{ratios[best]:.0%} at best, {path_label(best)}"
    ]
    default = default_workers()
    if default in ratios:
        parts.append(f"; {ratios[default]:.0%} with `modelplane up`'s default here, {path_label(default)}")
    if cores < TARGET_CORES:
        parts.append(f". This machine has fewer than {TARGET_CORES} cores: the target does not apply.")
    else:
        met = default in ratios and ratios[default] >= TARGET_RATIO
        parts.append(". Met." if met else ". Not met.")
    return "".join(parts)


READING_NOTES = """How to read it:
- req/s through ÷ direct is the share of the upstream's throughput that reaches wrk through the
  gateway, both at the same connections, medians of the rounds.
- The CPU columns are the user + system time of each process group over the measured run (not the
  warm-up), per request: for the gateway, the process that holds the port and routes (as
  `modelplane up` does) and all its workers; for the upstream, `modelplane serve` and its workers.
  The gateway's CPU per request is its own cost; req/s also depends on how many cores are left to the
  upstream and wrk, since all of them share the machine.
- At 1 connection, the added p50 is the latency a gateway worker adds to one request: two more
  loopback hops and the gateway's own work."""


def write_section(table: str) -> None:
    title = f"Gateway scaling, {os.cpu_count()} cores"
    section = (
        f"## {title}\n\n"
        "Through `modelplane up`'s gateway in N worker processes against straight at `modelplane serve "
        "--workers R`: how much of the replicas' throughput reaches clients.\n"
        f"Produced by `{command_line()}`.\n\n{table}\n\n{READING_NOTES}\n"
    )
    put_section(title, section)


def run_scaling(args) -> int:
    require_wrk()
    args.replicas = up_to_cores(args.replicas)
    args.gateway_workers = up_to_cores(args.gateway_workers)
    args.connections = args.connections or [128]
    args.wrk_threads = args.wrk_threads or max(1, min(4, (os.cpu_count() or 1) // 8))
    started, load = now_utc(), os.getloadavg()[0]
    work = WORK / "scaling"
    script = fresh_work(work)
    results: dict[int, dict | str] = {}
    for replicas in args.replicas:
        try:
            results[replicas] = measure_replicas(replicas, args, work / f"replicas-{replicas}", script)
        except (RuntimeError, VoidRun) as exc:
            log(f"R={replicas}: void ({exc})")
            results[replicas] = str(exc).replace("|", "/").replace("\n", " ")
    if all(isinstance(runs, str) for runs in results.values()):
        return 1
    table = render(results, args, started, load)
    print(table)
    if args.write_results:
        write_section(table)
    return 0
