"""Load with wrk: one thread, C connections, one request in flight per connection, the same body on every
call (peers/post_file.lua), with wrk's exact p50/p99 and the CPU time the server and wrk spent per request."""

from __future__ import annotations

import os
import re
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

from server_process import group_cpu_seconds

LUA = Path(__file__).resolve().parent / "peers" / "post_file.lua"


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    load: float = 0.0  # 1-minute load average when the run ended (other work on the machine shows here)
    server_cpu_ms: float = float("nan")  # CPU time of the server's processes per request (user + system)
    client_cpu_ms: float = float("nan")  # CPU time of wrk per request


class VoidRun(Exception):
    """A run with an error answer or a socket error: its numbers mean nothing."""


def run_wrk(
    url: str, concurrency: int, duration: float, body_file: Path, content_type: str, timeout_s: float = 30
) -> Run:
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", f"{timeout_s:g}s"]
    cmd += ["--latency", "-s", str(LUA), url]
    env = dict(os.environ, BENCH_BODY_FILE=str(body_file), BENCH_CONTENT_TYPE=content_type)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + timeout_s + 60)
    m = re.search(r"^BENCH_RESULT (.*)$", res.stdout, re.M)
    if res.returncode != 0 or not m:
        raise VoidRun(f"wrk failed ({res.returncode}): {res.stdout[-500:]} {res.stderr[-500:]}")
    fields = {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    errors = {k: int(fields[k]) for k in ("non2xx", "connect", "read", "write", "timeout")}
    if any(errors.values()) or fields["requests"] == 0:
        raise VoidRun(f"wrk saw errors {errors} in {int(fields['requests'])} requests")
    return Run(
        rps=fields["requests"] / (fields["duration_us"] / 1e6),
        p50_ms=fields["p50_us"] / 1000,
        p99_ms=fields["p99_us"] / 1000,
        requests=int(fields["requests"]),
    )


def measured_wrk(pgid: int, *args, **kwargs) -> Run:
    """run_wrk, with the CPU time the server's process group and wrk spent per request attached."""
    s0, c0 = group_cpu_seconds(pgid), _children_cpu_seconds()
    run = run_wrk(*args, **kwargs)
    s1, c1 = group_cpu_seconds(pgid), _children_cpu_seconds()
    run.server_cpu_ms = (s1 - s0) / run.requests * 1e3
    run.client_cpu_ms = (c1 - c0) / run.requests * 1e3
    run.load = os.getloadavg()[0]
    return run


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
