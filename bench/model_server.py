"""Model server benchmark (issue 2): modelplane against KServe 0.21 and MLServer 1.7, side by side.

The same iris LogisticRegression (trained here, saved as one joblib file) is served by:

- ceiling      a bare raw-ASGI app on uvicorn + httptools + uvloop returning a fixed V2 response, plus a bare
               grpc.aio generic handler returning a fixed ModelInferResponse (bench/peers/ceiling_app.py): the
               limit of those stacks on this machine (uvicorn for REST, grpcio's server for gRPC, which
               KServe and MLServer run on), not a model server; modelplane runs on its own HTTP servers,
               so for it the ceiling is a reference, not a bound
- modelplane   `modelplane serve ... --workers 1`, from the current environment
- kserve       KServe 0.21 Python ModelServer, 1 worker, logging off (`--configure_logging false
               --enable_latency_logging false`, PYTHONWARNINGS=ignore)
- kserve-log   the same with KServe's default logging (access log + trace lines per request)
- mlserver     MLServer 1.7.1 + mlserver-sklearn, `parallel_workers: 0` (inference in the server process),
               `debug: false` (no access log)
- mlserver-pw1 the same with `parallel_workers: 1` (one inference worker process; needs uvloop<0.22)

Each peer runs from its own virtual environment under bench/.envs/ (created here on first use, with the same
scikit-learn as the current environment, so the one joblib file loads everywhere).

Load: V2 REST `POST /v2/models/iris/infer` (1 row x 4 FP32, JSON) with wrk, and gRPC
`inference.GRPCInferenceService/ModelInfer` with h2load posting a pre-built gRPC-framed request; both at each
concurrency (connections; 1 in-flight request per connection), one thread. Every server is checked first with
one real request per protocol (HTTP client / grpcio) whose answer must be the right iris class; a run with any
non-2xx (REST) or any failed/errored stream or missing response data (gRPC) is void.

Rounds are interleaved (every server is started, measured on every row and stopped, then the next; the order
rotates each round) and the tables report the median of the rounds.

    python3 bench/model_server.py                       # 5 rounds x 10 s (about 30 min), prints the tables
    python3 bench/model_server.py --write-results       # ... and rewrites the "## Model server" section of
                                                        #     bench/RESULTS.md
"""

# ruff: noqa: E402 (imports after the sys.path fix below)
from __future__ import annotations

import os
import sys

from harness import free_port, log
from mlserver_home import write_mlserver_home
from results_file import put_section
from server_process import group_cpu_seconds
from venvs import ensure_venv  # the modules taken from bench/

# `python3 bench/model_server.py` puts bench/ first on sys.path, where a sibling script named like a stdlib
# module would shadow it for every library we import; only the modules above come from bench/.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import contextlib
import datetime
import http.client
import json
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = BENCH / "peers"
WORK = BENCH / ".work" / "model_server"
RESULTS = BENCH / "RESULTS.md"
SECTION = "## Model server"

MODEL_NAME = "iris"
ROW_INDEX = 0  # iris row 0: [5.1, 3.5, 1.4, 0.2], class 0 (setosa)
GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"

ALL_SERVERS = ["ceiling", "modelplane", "kserve", "kserve-log", "mlserver", "mlserver-pw1"]
PROTOCOLS = ["rest", "grpc"]

KSERVE_ENV = "ms-kserve"
MLSERVER_ENV = "ms-mlserver"


# --------------------------------------------------------------------------------------------- utilities


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def http_request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pip_versions(python: str, names: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = '-'\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


# --------------------------------------------------------------------------------------------- model + envs


@dataclass
class Model:
    path: Path
    row: list[float]
    expected: int


def train_model() -> Model:
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    WORK.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    path = WORK / "model" / "model.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(clf, path)
    row = [float(v) for v in np.asarray(x[ROW_INDEX], dtype=np.float32)]
    expected = int(clf.predict(np.asarray([row], dtype=np.float32))[0])
    if expected != int(y[ROW_INDEX]):
        raise SystemExit(f"the model misclassifies iris row {ROW_INDEX}; pick another row")
    return Model(path=path, row=row, expected=expected)


# --------------------------------------------------------------------------------------------- request bodies


def rest_body(model: Model) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [model.row]}]},
        separators=(",", ":"),
    ).encode()


def grpc_message(model: Model) -> bytes:
    from tritonclient.grpc import service_pb2

    req = service_pb2.ModelInferRequest(model_name=MODEL_NAME)
    tensor = req.inputs.add(name="input-0", datatype="FP32", shape=[1, 4])
    tensor.contents.fp32_contents.extend(model.row)
    return req.SerializeToString()


def grpc_frame(message: bytes) -> bytes:
    """The gRPC length-prefixed message: 1 byte 'compressed' flag, 4 bytes big-endian length, message."""
    return struct.pack(">BI", 0, len(message)) + message


def rest_answer(body: bytes) -> int:
    doc = json.loads(body)
    data = doc["outputs"][0]["data"]
    while isinstance(data, list):
        data = data[0]
    return int(data)


def grpc_answer(raw: bytes) -> int:
    import numpy as np
    from tritonclient.grpc import service_pb2

    resp = service_pb2.ModelInferResponse.FromString(raw)
    out = resp.outputs[0]
    if resp.raw_output_contents:
        dtype = {"INT64": np.int64, "INT32": np.int32, "FP32": np.float32, "FP64": np.float64}[out.datatype]
        return int(np.frombuffer(resp.raw_output_contents[0], dtype=dtype)[0])
    for kind in ("int64_contents", "int_contents", "uint64_contents", "uint_contents", "fp32_contents"):
        values = getattr(out.contents, kind)
        if len(values):
            return int(values[0])
    raise ValueError(f"no output data in {resp}")


def grpc_call(port: int, message: bytes, timeout: float = 5.0) -> bytes:
    """One ModelInfer call with grpcio, sending exactly the bytes h2load sends (minus the 5-byte frame)."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(GRPC_METHOD, request_serializer=None, response_deserializer=None)
        return call(message, timeout=timeout)


# --------------------------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    stop_signal: int = signal.SIGTERM
    protocols: tuple[str, ...] = ("rest", "grpc")
    http_port: int = 0
    grpc_port: int = 0
    proc: subprocess.Popen | None = None
    logfile: Path | None = None
    notes: list[str] = field(default_factory=list)

    def start(self, tag: str) -> None:
        self.logfile = WORK / "logs" / f"{self.name}-{tag}.log"
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: we stop it and every child it forks
            )

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        paths = ["/v2/health/ready", f"/v2/models/{MODEL_NAME}/ready"]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.logfile}")
            try:
                if all(http_request(self.http_port, "GET", p, timeout=2)[0] == 200 for p in paths):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s; see {self.logfile}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, self.stop_signal)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"WARNING: {self.name} did not stop on {signal.Signals(self.stop_signal).name}; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(10)
        # Children of the group (worker processes) must be gone too.
        deadline = time.monotonic() + 10
        while True:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                log(f"WARNING: processes of {self.name} left behind; killing the group")
                os.killpg(pgid, signal.SIGKILL)
                time.sleep(0.5)
                break
            time.sleep(0.1)
        self.proc = None
        for port in (self.http_port, self.grpc_port):
            if port:
                deadline = time.monotonic() + 10
                while not port_is_free(port) and time.monotonic() < deadline:
                    time.sleep(0.2)


def build_server(name: str, model: Model, pythons: dict[str, Path]) -> Server:
    http_port, grpc_port = free_port(), free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSERVER_", "VIRTUAL_ENV"))}
    model_dir = model.path.parent
    if name == "ceiling":
        return Server(
            name,
            [
                sys.executable,
                str(PEERS / "ceiling_app.py"),
                "--port",
                str(http_port),
                "--grpc-port",
                str(grpc_port),
            ],
            base_env,
            WORK,
            http_port=http_port,
            grpc_port=grpc_port,
        )
    if name == "modelplane":
        exe = shutil.which("modelplane") or "modelplane"
        argv = [
            exe,
            "serve",
            "--model-dir",
            str(model_dir),
            "--model-name",
            MODEL_NAME,
            "--runtime",
            "sklearn",
        ]
        argv += [
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
        ]
        return Server(name, argv, base_env, WORK, http_port=http_port, grpc_port=grpc_port)
    if name in ("kserve", "kserve-log"):
        argv = [str(pythons["kserve"]), str(PEERS / "kserve_iris.py"), "--model_dir", str(model_dir)]
        argv += ["--model_name", MODEL_NAME, "--http_port", str(http_port), "--grpc_port", str(grpc_port)]
        argv += ["--workers", "1"]
        env = dict(base_env)
        if name == "kserve":
            argv += ["--configure_logging", "false", "--enable_latency_logging", "false"]
            env["PYTHONWARNINGS"] = "ignore"
        return Server(name, argv, env, WORK, http_port=http_port, grpc_port=grpc_port)
    if name in ("mlserver", "mlserver-pw1"):
        folder = WORK / name
        if folder.exists():
            shutil.rmtree(folder)
        workers = 0 if name == "mlserver" else 1
        implementation, uri = "mlserver_sklearn.SKLearnModel", "./model.joblib"
        write_mlserver_home(folder, MODEL_NAME, implementation, uri, http_port, grpc_port, workers=workers)
        shutil.copy(model.path, folder / MODEL_NAME / "model.joblib")
        mlserver = str(pythons["mlserver"].parent / "mlserver")
        # MLServer hangs on SIGTERM ("Waiting for background tasks to complete"); SIGINT stops it.
        return Server(
            name,
            [mlserver, "start", str(folder)],
            base_env,
            folder,
            stop_signal=signal.SIGINT,
            http_port=http_port,
            grpc_port=grpc_port,
        )
    raise ValueError(name)


def modelplane_code_version() -> str:
    """The commit of the working tree modelplane runs from (an editable install), '+dirty' with local edits."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "modelplane"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return rev + ("+dirty" if dirty else "")


def modelplane_serve_available() -> tuple[bool, str]:
    exe = shutil.which("modelplane")
    if not exe:
        return False, "no `modelplane` command in this environment"
    res = subprocess.run([exe, "serve", "--help"], capture_output=True, text=True)
    if res.returncode != 0:
        return False, "`modelplane serve` does not exist yet: " + (res.stderr.strip().splitlines() or ["?"])[
            -1
        ]
    return True, ""


# --------------------------------------------------------------------------------------------- load generators


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    load: float = 0.0  # 1-minute load average when the run ended (other work on the machine shows here)
    server_cpu_us: float = float("nan")  # CPU time of the server's processes per request (user + system)
    client_cpu_us: float = float("nan")  # CPU time of the load generator per request


class VoidRun(Exception):
    pass


def children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measured(fn, pgid: int, *args) -> Run:
    """Run one load generator call and attach the server's and the client's CPU time per request."""
    s0, c0 = group_cpu_seconds(pgid), children_cpu_seconds()
    run = fn(*args)
    s1, c1 = group_cpu_seconds(pgid), children_cpu_seconds()
    run.server_cpu_us = (s1 - s0) / run.requests * 1e6
    run.client_cpu_us = (c1 - c0) / run.requests * 1e6
    return run


def run_wrk(port: int, concurrency: int, duration: float, body: bytes) -> Run:
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "--latency"]
    cmd += ["-s", str(PEERS / "v2_infer.lua"), f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer"]
    env = dict(os.environ, BENCH_BODY=body.decode())
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
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


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (as wrk's histogram reports them)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def run_h2load(port: int, concurrency: int, duration: float, body_file: Path, min_data: int) -> Run:
    logfile = WORK / "h2load.tsv"
    with contextlib.suppress(FileNotFoundError):
        logfile.unlink()
    cmd = ["h2load", "-t1", f"-c{concurrency}", "-m1", f"-D{max(1, round(duration))}", "-d", str(body_file)]
    cmd += ["-H", "content-type: application/grpc", "-H", "te: trailers", "--log-file", str(logfile)]
    cmd += [f"http://127.0.0.1:{port}{GRPC_METHOD}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    out = res.stdout
    m_req = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
        r"(\d+) timeout",
        out,
    )
    m_fin = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    m_data_exact = re.search(r"^traffic: .*\((\d+)\) data", out, re.M)  # "..., 36.35KB (37224) data"
    if res.returncode != 0 or not (m_req and m_fin):
        raise VoidRun(f"h2load failed ({res.returncode}): {out[-800:]} {res.stderr[-300:]}")
    total, _, done, ok, failed, errored, timeouts = (int(v) for v in m_req.groups())
    if failed or errored or timeouts or ok == 0:
        raise VoidRun(f"h2load: {ok} succeeded, {failed} failed, {errored} errored, {timeouts} timeout")
    data_bytes = int(m_data_exact.group(1)) if m_data_exact else None
    if data_bytes is not None and data_bytes < ok * min_data:
        # A gRPC error is HTTP 200 with a trailers-only answer: no DATA at all. Each success carries a
        # framed ModelInferResponse.
        raise VoidRun(f"h2load: {data_bytes} data bytes for {ok} responses (< {min_data} each): gRPC errors?")
    latencies = []
    with open(logfile) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3:
                if parts[1] != "200":
                    raise VoidRun(f"h2load: HTTP status {parts[1]}")
                latencies.append(int(parts[2]) / 1000)
    latencies.sort()
    return Run(
        rps=float(m_fin.group(3)),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        requests=ok,
    )


# --------------------------------------------------------------------------------------------- main


def verify(server: Server, model: Model, rest: bytes, message: bytes) -> dict[str, str]:
    """One real request per protocol; returns {protocol: reason} for the protocols that are void."""
    void: dict[str, str] = {}
    if "rest" in server.protocols:
        try:
            status, body = http_request(server.http_port, "POST", f"/v2/models/{MODEL_NAME}/infer", rest)
            if status != 200:
                raise ValueError(f"HTTP {status}: {body[:200]!r}")
            got = rest_answer(body)
            if server.name != "ceiling" and got != model.expected:
                raise ValueError(f"answered class {got}, expected {model.expected}: {body[:200]!r}")
        except Exception as exc:  # noqa: BLE001 - any failure voids the protocol
            void["rest"] = f"REST check failed: {exc}"
    if "grpc" in server.protocols:
        deadline = time.monotonic() + 30
        while True:
            try:
                got = grpc_answer(grpc_call(server.grpc_port, message))
                if server.name != "ceiling" and got != model.expected:
                    raise ValueError(f"answered class {got}, expected {model.expected}")
                break
            except Exception as exc:  # noqa: BLE001
                if time.monotonic() > deadline or isinstance(exc, ValueError):
                    void["grpc"] = f"gRPC check failed: {str(exc).splitlines()[0][:300]}"
                    break
                time.sleep(0.5)
    return void


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (default 10)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before each run (default 2)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds; medians reported (default 5)"
    )
    parser.add_argument("--concurrency", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--servers", default=",".join(ALL_SERVERS), help=f"default {','.join(ALL_SERVERS)}")
    parser.add_argument("--protocols", default="rest,grpc")
    parser.add_argument(
        "--write-results", action="store_true", help="rewrite our section of bench/RESULTS.md"
    )
    parser.add_argument("--check", action="store_true", help="start and check every server, measure nothing")
    args = parser.parse_args()

    concurrencies = [int(c) for c in args.concurrency.split(",")]
    servers = [s for s in args.servers.split(",") if s]
    protocols = [p for p in args.protocols.split(",") if p]
    for s in servers:
        if s not in ALL_SERVERS:
            parser.error(f"unknown server {s!r}")
    for tool, proto in (("wrk", "rest"), ("h2load", "grpc")):
        if proto in protocols and not shutil.which(tool):
            raise SystemExit(
                f"{tool} is missing: run `bash bench/setup.sh` (Debian packages wrk, nghttp2-client)"
            )

    # A SIGTERM to the harness still stops the server it is measuring (the `finally` below runs).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.datetime.now(datetime.UTC)
    WORK.mkdir(parents=True, exist_ok=True)
    log("training the iris LogisticRegression")
    model = train_model()
    import sklearn

    sk = sklearn.__version__
    pythons: dict[str, Path] = {}
    if any(s.startswith("kserve") for s in servers):
        pythons["kserve"] = ensure_venv(KSERVE_ENV, ["kserve==0.21.0", f"scikit-learn=={sk}", "joblib"])
    if any(s.startswith("mlserver") for s in servers):
        # uvloop<0.22: with 0.22+ MLServer's inference worker processes fail to load the model
        # (asyncio.get_event_loop() raises), which parallel_workers >= 1 needs.
        pythons["mlserver"] = ensure_venv(
            MLSERVER_ENV,
            ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", f"scikit-learn=={sk}", "joblib", "uvloop<0.22"],
        )

    skipped: dict[str, str] = {}
    if "modelplane" in servers:
        ok, why = modelplane_serve_available()
        if not ok:
            log(f"skipping modelplane: {why}")
            skipped["modelplane"] = why
            servers.remove("modelplane")

    rest = rest_body(model)
    message = grpc_message(model)
    body_file = WORK / "model_infer.grpc"
    body_file.write_bytes(grpc_frame(message))

    # results[(protocol, concurrency, server)] = [Run, ...]; void[(protocol, server)] = reason
    results: dict[tuple[str, int, str], list[Run]] = {}
    void: dict[tuple[str, str], str] = {}
    min_data: dict[str, int] = {}
    code_versions: dict[str, list[int]] = {}  # modelplane commit -> rounds it was measured at
    load_before = os.getloadavg()

    for rnd in range(1 if args.check else args.rounds):
        order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
        for name in order:
            server = build_server(name, model, pythons)
            log(
                f"round {rnd + 1}/{args.rounds}: starting {name} (http {server.http_port}, grpc {server.grpc_port})"
            )
            if name == "modelplane":
                code_versions.setdefault(modelplane_code_version(), []).append(rnd + 1)
            try:
                server.start(f"r{rnd + 1}")
                server.wait_ready()
                bad = verify(server, model, rest, message)
                for proto, reason in bad.items():
                    log(f"{name}: {reason}; its {proto} runs are void")
                    void[(proto, name)] = reason
                if "grpc" not in bad and "grpc" in protocols:
                    # An error answer has no DATA at all; a real one has a framed ModelInferResponse (its id
                    # may vary in length, hence only half the size checked here is required per response).
                    min_data[name] = 5 + len(grpc_call(server.grpc_port, message)) // 2
                if args.check:
                    log(f"{name}: checks passed for {[p for p in server.protocols if p not in bad]}")
                    continue
                for proto in protocols:
                    if proto not in server.protocols or (proto, name) in void:
                        continue
                    for c in concurrencies:
                        try:
                            if proto == "rest":
                                run_wrk(server.http_port, c, args.warmup, rest)
                                r = measured(
                                    run_wrk, server.proc.pid, server.http_port, c, args.duration, rest
                                )
                            else:
                                grpc_args = (server.grpc_port, c, args.warmup, body_file, min_data[name])
                                run_h2load(*grpc_args)
                                grpc_args = (server.grpc_port, c, args.duration, body_file, min_data[name])
                                r = measured(run_h2load, server.proc.pid, *grpc_args)
                        except VoidRun as exc:
                            log(f"{name} {proto} c={c}: VOID: {exc}")
                            void[(proto, name)] = f"c={c}: {exc}"
                            break
                        r.load = os.getloadavg()[0]
                        results.setdefault((proto, c, name), []).append(r)
                        log(
                            f"{name:12s} {proto:4s} c={c:<3d} {r.rps:9.0f} req/s  p50 {r.p50_ms:7.2f} ms"
                            f"  p99 {r.p99_ms:7.2f} ms  CPU/req server {r.server_cpu_us:5.0f} us"
                            f" client {r.client_cpu_us:4.0f} us  (load {r.load:.2f})"
                        )
            except RuntimeError as exc:
                log(f"{name}: {exc}")
                for proto in server.protocols:
                    void[(proto, name)] = str(exc)
            finally:
                server.stop()
    if args.check:
        return 1 if void else 0

    # Drop the runs of a (protocol, server) that was void in any round: a server answering errors is void.
    for proto, c, name in list(results):
        if (proto, name) in void:
            del results[(proto, c, name)]

    versions = collect_versions(pythons)
    if code_versions:
        versions["modelplane code measured"] = ", ".join(
            f"{rev} (round{'s' if len(r) > 1 else ''} {','.join(map(str, r))})"
            for rev, r in code_versions.items()
        )
    report = render(
        results,
        void,
        skipped,
        protocols,
        concurrencies,
        servers + list(skipped),
        args,
        started,
        load_before,
        versions,
    )
    print(report["text"])
    if args.write_results:
        write_section(report["markdown"])
        log(f"wrote the '{SECTION}' section of {RESULTS.relative_to(REPO)}")
    return 0


# --------------------------------------------------------------------------------------------- report


def collect_versions(pythons: dict[str, Path]) -> dict[str, str]:
    v: dict[str, str] = {"python": platform.python_version()}
    here = pip_versions(
        sys.executable, ["modelplane", "scikit-learn", "numpy", "uvicorn", "uvloop", "httptools", "grpcio"]
    )
    v.update({f"{k} (current env)": val for k, val in here.items()})
    if "kserve" in pythons:
        for k, val in pip_versions(
            str(pythons["kserve"]), ["kserve", "scikit-learn", "uvicorn", "uvloop", "grpcio"]
        ).items():
            v[f"{k} (kserve env)"] = val
    if "mlserver" in pythons:
        names = ["mlserver", "mlserver-sklearn", "scikit-learn", "uvicorn", "uvloop", "grpcio"]
        for k, val in pip_versions(str(pythons["mlserver"]), names).items():
            v[f"{k} (mlserver env)"] = val
    for tool, flag in (("wrk", "-v"), ("h2load", "--version")):
        res = subprocess.run([tool, flag], capture_output=True, text=True)
        v[tool] = (
            (res.stdout + res.stderr).strip().splitlines()[0] if (res.stdout + res.stderr).strip() else "?"
        )
    return v


def fmt(x: float, digits: int = 2) -> str:
    if x != x:  # nan
        return "-"
    return f"{x:,.0f}" if digits == 0 else f"{x:.{digits}f}"


def render(results, void, skipped, protocols, concurrencies, servers, args, started, load_before, versions):
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    med: dict[tuple[str, int, str], tuple] = {}
    for key, runs in results.items():
        rps = [r.rps for r in runs]
        med[key] = (
            median(rps),
            median([r.p50_ms for r in runs]),
            median([r.p99_ms for r in runs]),
            min(rps),
            max(rps),
            len(runs),
            median([r.server_cpu_us for r in runs]),
            median([r.client_cpu_us for r in runs]),
        )

    md: list[str] = []
    txt: list[str] = []
    cmd = "python3 bench/model_server.py " + " ".join(sys.argv[1:])
    loads = [r.load for runs in results.values() for r in runs]
    md.append(
        f"Run {started.strftime('%Y-%m-%d %H:%M UTC')} on {os.cpu_count()} cores ({cpu}), shared with other"
    )
    md.append(
        f"work: 1-minute load average {load_before[0]:.2f} at the start,"
        f" {min(loads, default=0):.2f}–{max(loads, default=0):.2f} during the runs; read ratios and medians."
    )
    md.append("")
    md.append("    " + cmd.strip())
    md.append("")
    md.append(
        f"{args.rounds} interleaved rounds (each server started, measured on every row, stopped; order rotated),"
        f" {args.duration:g} s per run after {args.warmup:g} s of warm-up; medians of the rounds (req/s range in"
        " brackets). One connection per unit of concurrency, one request in flight per connection, one client"
        " thread. REST: wrk, `POST /v2/models/iris/infer`, JSON 1 x 4 FP32. gRPC: h2load posting one pre-built"
        " ModelInferRequest (FP32 contents, 1 x 4) to `inference.GRPCInferenceService/ModelInfer`, p50/p99 from"
        " its per-request log. Every server answered the right iris class to one request per protocol"
        " (http.client, grpcio with the same bytes) before it was loaded; runs with errors are void."
        " CPU µs/req: user+system CPU time of the server's process group (all its processes and threads) and of"
        " the load generator during the run, divided by the requests served; it depends much less on the other"
        " work on the machine than req/s does."
    )
    md.append("")
    md.append(
        "Servers: `ceiling` = bare raw-ASGI app on uvicorn+httptools+uvloop (and a bare grpc.aio generic"
    )
    md.append(
        "handler) returning a fixed response, the limit of those stacks (modelplane's REST runs on its own"
    )
    md.append(
        "httptools server and its gRPC on its own HTTP/2 server, not on uvicorn or grpcio's server, so for"
    )
    md.append("modelplane it is a reference, not a bound); `modelplane` = `modelplane serve")
    md.append(
        "--workers 1`; `kserve` = KServe ModelServer, 1 worker, logging off (`--configure_logging false"
    )
    md.append(
        "--enable_latency_logging false`, PYTHONWARNINGS=ignore); `kserve-log` = same, default logging;"
    )
    md.append("`mlserver` = MLServer + mlserver-sklearn, `parallel_workers: 0` (in-process), `debug: false`;")
    md.append("`mlserver-pw1` = same with `parallel_workers: 1` (one inference worker process, uvloop<0.22).")
    md.append("")

    mp = "modelplane"
    for proto in protocols:
        for c in concurrencies:
            title = f"{'V2 REST' if proto == 'rest' else 'gRPC'}, concurrency {c}"
            md.append(f"### {title}")
            md.append("")
            md.append(
                "| server | req/s | p50 ms | p99 ms | modelplane ÷ this: req/s | modelplane ÷ this: p99 "
                "| server CPU µs/req | client CPU µs/req |"
            )
            md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
            txt.append("")
            txt.append(title)
            txt.append(
                f"  {'server':14s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s}  {'mp/x req/s':>10s} {'mp/x p99':>9s} {'srv us':>7s} {'cli us':>6s}  range"
            )
            base = med.get((proto, c, mp))
            for name in servers:
                key = (proto, c, name)
                if key in med:
                    rps, p50, p99, lo, hi, n, scpu, ccpu = med[key]
                    if base and name != mp:
                        r_rps, r_p99 = f"{base[0] / rps:.2f}×", f"{base[2] / p99:.2f}×"
                    else:
                        r_rps = r_p99 = "-"
                    md.append(
                        f"| {name} | {fmt(rps, 0)} [{fmt(lo, 0)}–{fmt(hi, 0)}] | {fmt(p50)} | {fmt(p99)} "
                        f"| {r_rps} | {r_p99} | {fmt(scpu, 0)} | {fmt(ccpu, 0)} |"
                    )
                    txt.append(
                        f"  {name:14s} {rps:9.0f} {p50:8.2f} {p99:8.2f}  {r_rps:>10s} {r_p99:>9s} {scpu:7.0f} {ccpu:6.0f}  "
                        f"[{lo:.0f}-{hi:.0f}] n={n}"
                    )
                else:
                    why = (
                        skipped.get(name)
                        or void.get((proto, name))
                        or ("no gRPC server" if proto == "grpc" and name == "ceiling" else "not measured")
                    )
                    md.append(f"| {name} | not measured: {why} | | | | | | |")
                    txt.append(f"  {name:14s} not measured: {why}")
            md.append("")

    # Targets (issue 2), at the highest concurrency against KServe, on every row against MLServer.
    md.append("### Targets")
    md.append("")
    txt.append("")
    txt.append("Targets")
    cmax = max(concurrencies)
    lines = []
    for proto in protocols:
        a, k = med.get((proto, cmax, mp)), med.get((proto, cmax, "kserve"))
        label = "REST" if proto == "rest" else "gRPC"
        if a and k:
            ok1 = a[0] >= 5 * k[0]
            ok2 = a[2] <= k[2] / 3
            lines.append(
                f"{label} c={cmax}: throughput {a[0] / k[0]:.2f}× KServe (target ≥ 5×): {'met' if ok1 else 'MISSED'}"
            )
            lines.append(
                f"{label} c={cmax}: p99 {a[2] / k[2]:.2f}× KServe's (target ≤ 0.33×): {'met' if ok2 else 'MISSED'}"
            )
        else:
            lines.append(f"{label} c={cmax}: vs KServe not evaluated (a side was not measured)")
        for ml in ("mlserver", "mlserver-pw1"):
            for c in concurrencies:
                a, m = med.get((proto, c, mp)), med.get((proto, c, ml))
                if a and m:
                    ahead = a[0] > m[0] and a[1] <= m[1] and a[2] <= m[2]
                    lines.append(
                        f"{label} c={c}: vs {ml}: req/s {a[0] / m[0]:.2f}×, p50 {a[1] / m[1]:.2f}×, p99 {a[2] / m[2]:.2f}×:"
                        f" {'ahead' if ahead else 'NOT ahead'}"
                    )
        a, ce = med.get((proto, cmax, mp)), med.get((proto, cmax, "ceiling"))
        if a and ce:
            lines.append(
                f"{label} c={cmax}: modelplane answers {100 * a[0] / ce[0]:.0f}% of the ceiling's req/s"
            )
    for line in lines:
        md.append(f"- {line}")
        txt.append(f"  {line}")
    md.append("")
    if skipped or void:
        md.append("Not measured / void:")
        md.append("")
        for name, why in skipped.items():
            md.append(f"- {name}: {why}")
        for (proto, name), why in void.items():
            md.append(f"- {name} {proto}: {why}")
        md.append("")

    md.append("Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    md.append("")
    txt.append("")
    txt.append("Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()))
    return {"markdown": "\n".join(md), "text": "\n".join(txt)}


def write_section(body: str) -> None:
    put_section(SECTION.removeprefix("## "), f"{SECTION}\n\n{body.rstrip()}\n")


if __name__ == "__main__":
    sys.exit(main())
