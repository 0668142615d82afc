"""Transformer benchmark: a KServe-style transformer in front of a predictor, modelplane against KServe 0.21.

One predictor serves every row: `modelplane serve` with an sklearn iris LogisticRegression (trained here,
saved with joblib), one worker, its REST and gRPC ports. In front of it, four pass-through transformers
(`preprocess` hands on the V2 request it was given as an `InferRequest`, the default `predict` sends it to
the predictor, `postprocess` returns the answer), each in a process of its own:

- modelplane, v2        `modelplane serve --model-class peers/modelplane_transformer.py:PassThrough
                        --model-name iris --predictor-host 127.0.0.1:<REST port> --predictor-protocol v2`
- modelplane, grpc-v2   the same with `--predictor-protocol grpc-v2` and the predictor's gRPC port
- kserve, v2            peers/kserve_transformer.py, the same class written against kserve 0.21, run by
                        `kserve.ModelServer().start` with `--predictor_host 127.0.0.1:<REST port>
                        --protocol v2 --predictor_protocol v2`, one worker, logging off
- kserve, grpc-v2       the same with `grpc-v2` and the predictor's gRPC port

KServe runs from bench/.envs/ms-kserve (the venv bench/model_server.py makes, created here on first use);
modelplane from this checkout (on PYTHONPATH). Every process listens on 127.0.0.1.

Load: wrk, one thread, `POST /v2/models/iris/infer` (JSON, 1 row x 4 FP32) at each concurrency
(connections, one request in flight each), at each transformer and, for reference, straight at the
predictor ("direct"). Each path is checked first with one real request whose answer must be the right iris
class; a run with any non-2xx answer or socket error voids its path. Everything is started once; rounds
interleave the paths (their order rotates each round) and the tables report medians: req/s, p50, p99, and
the CPU per request (user + system over the measured run) of the transformer's process group and of the
predictor's.

    python3 bench/transformer.py                   # 5 rounds x 5 paths x 2 rows x (6 + 2) s, about 7 min
    python3 bench/transformer.py --write-results   # ... and rewrites "## Transformer" in bench/RESULTS.md
"""

# ruff: noqa: E402 (imports after the sys.path fix below)
from __future__ import annotations

import os
import sys

from harness import free_port, log, modelplane_commit
from results_file import put_section
from server_process import ServerProcess, group_cpu_seconds, http_request
from venvs import ensure_venv
from wrk_load import VoidRun, run_wrk

# `python3 bench/transformer.py` puts bench/ first on sys.path, where a sibling script named like a module
# (this very file is named like the transformers package) would shadow it for every library we import;
# only the modules above come from bench/.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import datetime
import json
import platform
import shutil
import signal
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = BENCH / "peers"
WORK = BENCH / ".work" / "transformer"
SECTION = "Transformer"

MODEL_NAME = "iris"
ROW_INDEX = 100  # iris row 100: [6.3, 3.3, 6.0, 2.5], class 2 (virginica)
KSERVE_ENV = "ms-kserve"  # shared with bench/model_server.py: the same requirement list
PATHS = ["direct", "modelplane-v2", "modelplane-grpc-v2", "kserve-v2", "kserve-grpc-v2"]
LABELS = {
    "direct": "direct (predictor)",
    "modelplane-v2": "modelplane, v2",
    "modelplane-grpc-v2": "modelplane, grpc-v2",
    "kserve-v2": "kserve, v2",
    "kserve-grpc-v2": "kserve, grpc-v2",
}
PROTOCOLS = ["v2", "grpc-v2"]


@dataclass
class Iris:
    folder: Path  # holds model.joblib
    body: Path  # the V2 request wrk posts
    expected: int  # the estimator's own class for the row


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    transformer_cpu_us: float  # CPU per request of the transformer's process group (nan for direct)
    predictor_cpu_us: float  # CPU per request of the predictor's process group
    load: float  # 1-minute load average when the run ended


def train_iris() -> Iris:
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    estimator = LogisticRegression(max_iter=1000).fit(x, y)
    folder = WORK / "model"
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, folder / "model.joblib")
    row = [float(v) for v in np.asarray(x[ROW_INDEX], dtype=np.float32)]
    expected = int(estimator.predict(np.asarray([row], dtype=np.float32))[0])
    if expected != int(y[ROW_INDEX]):
        raise SystemExit(f"the model misclassifies iris row {ROW_INDEX}; pick another row")
    body = WORK / "v2_request.json"
    request = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": row}]}
    body.write_text(json.dumps(request, separators=(",", ":")))
    return Iris(folder=folder, body=body, expected=expected)


# --------------------------------------------------------------------------------------------- servers


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}


def ready_paths(port: int) -> list[tuple[int, str]]:
    return [(port, "/v2/health/ready"), (port, f"/v2/models/{MODEL_NAME}/ready")]


def modelplane_serve(name: str, options: list[str], grpc_port: int) -> ServerProcess:
    """`python3 -m modelplane serve` from this checkout, one worker, on 127.0.0.1 (gRPC off for -1)."""
    http_port = free_port()
    env = dict(clean_env(), PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "modelplane", "serve", "--model-name", MODEL_NAME, *options]
    argv += ["--http-port", str(http_port), "--grpc-port", str(grpc_port), "--workers", "1"]
    argv += ["--host", "127.0.0.1"]
    ports = [http_port] + ([grpc_port] if grpc_port > 0 else [])
    return ServerProcess(name, argv, env, WORK, WORK / "logs" / f"{name}.log", ready_paths(http_port), ports)


def predictor(model: Iris) -> ServerProcess:
    options = ["--model-dir", str(model.folder), "--runtime", "sklearn"]
    return modelplane_serve("predictor", options, free_port())


def transformer(path: str, predictor_server: ServerProcess, kserve_python: Path) -> ServerProcess:
    """The transformer of `path` ("modelplane-v2", "kserve-grpc-v2"...) in front of the predictor."""
    server, protocol = path.split("-", 1)
    http_port, grpc_port = predictor_server.ports
    host = f"127.0.0.1:{grpc_port if protocol == 'grpc-v2' else http_port}"
    if server == "modelplane":
        model_class = f"{PEERS / 'modelplane_transformer.py'}:PassThrough"
        options = ["--model-class", model_class, "--predictor-host", host, "--predictor-protocol", protocol]
        return modelplane_serve(path, options, -1)
    port = free_port()
    argv = [str(kserve_python), str(PEERS / "kserve_transformer.py"), "--model_name", MODEL_NAME]
    argv += ["--http_port", str(port), "--grpc_port", str(free_port()), "--enable_grpc", "false"]
    argv += ["--workers", "1", "--predictor_host", host, "--protocol", protocol]
    argv += ["--predictor_protocol", protocol]
    argv += ["--configure_logging", "false", "--enable_latency_logging", "false"]
    env = dict(clean_env(), PYTHONWARNINGS="ignore")
    return ServerProcess(path, argv, env, WORK, WORK / "logs" / f"{path}.log", ready_paths(port), [port])


def check_answer(server: ServerProcess, model: Iris) -> None:
    """One real request: the answer must hold the estimator's own class."""
    port = server.ready[0][0]
    status, body = http_request(port, "POST", f"/v2/models/{MODEL_NAME}/infer", model.body.read_bytes())
    if status != 200:
        raise RuntimeError(f"the check request got HTTP {status}: {body[:300]!r}")
    data = json.loads(body)["outputs"][0]["data"]
    while isinstance(data, list):
        data = data[0]
    if int(data) != model.expected:
        raise RuntimeError(f"the check request got class {data}, expected {model.expected}: {body[:300]!r}")


# --------------------------------------------------------------------------------------------- load


def measured(target: ServerProcess, predictor_server: ServerProcess, concurrency: int, args, body: Path):
    """A warm-up run, then the measured one at `target`, with the CPU per request of the target's process
    group (when it is a transformer) and of the predictor's."""
    url = f"http://127.0.0.1:{target.ready[0][0]}/v2/models/{MODEL_NAME}/infer"
    run_wrk(url, concurrency, args.warmup, body, "application/json")
    before = group_cpu_seconds(target.pgid), group_cpu_seconds(predictor_server.pgid)
    run = run_wrk(url, concurrency, args.duration, body, "application/json")
    per_request = 1e6 / run.requests
    transformer_cpu = float("nan")
    if target is not predictor_server:
        transformer_cpu = (group_cpu_seconds(target.pgid) - before[0]) * per_request
    predictor_cpu = (group_cpu_seconds(predictor_server.pgid) - before[1]) * per_request
    return Sample(run.rps, run.p50_ms, run.p99_ms, transformer_cpu, predictor_cpu, os.getloadavg()[0])


def measure(model: Iris, kserve_python: Path, args, paths: list[str], void: dict[str, str]):
    """Starts the predictor and the transformers of `paths`, checks each, and runs the interleaved rounds;
    samples keyed by (concurrency, path). A path whose check or run fails goes into `void`."""
    samples: dict[tuple[int, str], list[Sample]] = {}
    predictor_server = predictor(model)
    servers = {"direct": predictor_server}
    try:
        predictor_server.start()
        predictor_server.wait_ready()
        check_answer(predictor_server, model)
        for path in paths:
            if path != "direct":
                servers[path] = transformer(path, predictor_server, kserve_python)
                servers[path].start()
        for path in paths:
            try:
                servers[path].wait_ready()
                check_answer(servers[path], model)
            except RuntimeError as exc:
                log(f"{path}: VOID: {exc}")
                void[path] = str(exc)
        live = [path for path in paths if path not in void]
        for round_index in range(args.rounds if live else 0):
            shift = round_index % len(live)
            for concurrency in args.concurrency:
                for path in live[shift:] + live[:shift]:
                    if path in void:
                        continue
                    try:
                        sample = measured(servers[path], predictor_server, concurrency, args, model.body)
                    except VoidRun as exc:
                        log(f"{path} c={concurrency}: VOID: {exc}")
                        void[path] = f"c={concurrency}: {exc}"
                        continue
                    samples.setdefault((concurrency, path), []).append(sample)
                    log(
                        f"round {round_index + 1}/{args.rounds} c={concurrency:<3} {path:19} "
                        f"{sample.rps:7.0f} req/s  p50 {sample.p50_ms:6.2f} ms  p99 {sample.p99_ms:6.2f} ms  "
                        f"CPU/req transformer {sample.transformer_cpu_us:5.0f} us "
                        f"predictor {sample.predictor_cpu_us:5.0f} us  (load {sample.load:.2f})"
                    )
    finally:
        for server in reversed(servers.values()):
            server.stop()
    return {key: runs for key, runs in samples.items() if key[1] not in void}


# --------------------------------------------------------------------------------------------- report


def median(runs: list[Sample], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def ratio(value: float) -> str:
    """Two decimals, three below 0.1 (a p99 can be a few hundred times shorter)."""
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.3f}×"


def fmt_us(value: float) -> str:
    return "" if value != value else f"{value:,.0f}"  # nan: no transformer


def render(samples, void, args, started, load_before, versions) -> str:
    loads = [sample.load for runs in samples.values() for sample in runs]
    body = (WORK / "v2_request.json").read_text()
    md = [
        f"Run {started.strftime('%Y-%m-%d %H:%M UTC')} on {platform.node() or 'this machine'}:"
        f" {os.cpu_count()} cores ({cpu_model()}), {platform.system()} {platform.release()}, shared with"
        f" other work: 1-minute load average {load_before[0]:.2f} at the start,"
        f" {min(loads, default=0):.2f}–{max(loads, default=0):.2f} during the runs; read ratios and medians.",
        "",
        "    python3 bench/transformer.py " + " ".join(sys.argv[1:]),
        "",
        "One predictor for every row: `modelplane serve --runtime sklearn --workers 1` with an iris"
        " `LogisticRegression` (joblib), its REST and gRPC ports. In front of it, pass-through transformers, one"
        " process each: `preprocess` returns the V2 `InferRequest` it was given, the default `predict` sends"
        " it to the predictor, `postprocess` returns the answer (both stages `async def`). modelplane:"
        " `modelplane serve --model-class bench/peers/modelplane_transformer.py:PassThrough --workers 1"
        " --predictor-host ... --predictor-protocol v2|grpc-v2`; KServe 0.21: the same class written against"
        " `kserve.Model` (bench/peers/kserve_transformer.py), `kserve.ModelServer().start` with `--workers 1"
        " --predictor_host ... --protocol v2|grpc-v2 --predictor_protocol v2|grpc-v2` (KServe 0.21 reads only the"
        " second), logging off (`--configure_logging false"
        " --enable_latency_logging false`, PYTHONWARNINGS=ignore). `v2` is REST V2 to the predictor's REST"
        " port, `grpc-v2` a gRPC `ModelInfer` to its gRPC port. The transformers' own gRPC servers are off;"
        " all of them run the whole time, idle but for the one under load. `direct` is wrk straight at the"
        " predictor, for reference.",
        "",
        f"wrk, one thread, `POST /v2/models/iris/infer` with `{body}`, one connection per unit of concurrency,"
        " one request in flight each. Every path answered the estimator's own class to one request before it"
        f" was loaded; a run with any error voids its path. {args.rounds} interleaved rounds (order rotated)"
        f" of {args.duration:g} s per row after {args.warmup:g} s of warm-up; medians of the rounds (req/s range"
        " in brackets). CPU µs/req: user + system CPU time of the transformer's process group and of the"
        " predictor's during the measured run, divided by the requests served. wrk, the transformer and the"
        " predictor share the cores.",
        "",
    ]
    for concurrency in args.concurrency:
        md += [f"### Concurrency {concurrency}", ""]
        md.append(
            "| path | req/s | p50 ms | p99 ms | added p50 ms | transformer CPU µs/req | predictor CPU µs/req |"
        )
        md.append("|---|---:|---:|---:|---:|---:|---:|")
        direct = samples.get((concurrency, "direct"))
        for path in PATHS:
            runs = samples.get((concurrency, path))
            if runs is None:
                why = void.get(path, "not measured")
                md.append(f"| {LABELS[path]} | void: {why} | | | | | |")
                continue
            rps = [run.rps for run in runs]
            p50 = median(runs, "p50_ms")
            added = "" if path == "direct" or not direct else f"{p50 - median(direct, 'p50_ms'):+.2f}"
            md.append(
                f"| {LABELS[path]} | {statistics.median(rps):,.0f} [{min(rps):,.0f}–{max(rps):,.0f}] | {p50:.2f}"
                f" | {median(runs, 'p99_ms'):.2f} | {added} | {fmt_us(median(runs, 'transformer_cpu_us'))}"
                f" | {fmt_us(median(runs, 'predictor_cpu_us'))} |"
            )
        md.append("")
    md += ["### modelplane ÷ kserve", ""]
    md.append(
        "| predictor protocol | concurrency | req/s | p50 | p99 | transformer CPU/req | predictor CPU/req |"
    )
    md.append("|---|---:|---:|---:|---:|---:|---:|")
    for protocol in PROTOCOLS:
        for concurrency in args.concurrency:
            mp = samples.get((concurrency, f"modelplane-{protocol}"))
            ks = samples.get((concurrency, f"kserve-{protocol}"))
            if not (mp and ks):
                md.append(f"| {protocol} | {concurrency} | not evaluated (a side was not measured) | | | | |")
                continue
            ratios = [
                median(mp, field) / median(ks, field)
                for field in ("rps", "p50_ms", "p99_ms", "transformer_cpu_us", "predictor_cpu_us")
            ]
            md.append(f"| {protocol} | {concurrency} | " + " | ".join(ratio(r) for r in ratios) + " |")
    md.append("")
    if void:
        md += ["Void:", ""] + [f"- {path}: {why}" for path, why in void.items()] + [""]
    md.append("Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    md += ["", READING_NOTES]
    return "\n".join(md) + "\n"


INTRO = (
    "What a KServe-style transformer costs in front of a predictor: the same pass-through transformer on"
    " modelplane and on KServe 0.21, over REST V2 and gRPC to one predictor."
)

READING_NOTES = """How to read it:
- The ratio table is modelplane over KServe for the same predictor protocol and concurrency, medians of
  the rounds: above 1 is better for modelplane in req/s, below 1 is better in latency and CPU. The
  transformer's CPU per request is its own cost and the steadier number on this shared machine; req/s
  and latency through a transformer depend on both processes, which at concurrency 16 compete with wrk
  for the 2 cores.
- Both transformers do the same work per request: read the V2 JSON into an `InferRequest`, run the two
  stages, call the predictor, read its answer and write it back as V2 JSON. modelplane does it on its own
  HTTP server, with its own HTTP/1.1 client for `v2` and its own HTTP/2 gRPC client for `grpc-v2`
  (modelplane/protocol/grpc/client.py); KServe on FastAPI and uvicorn, with httpx for `v2` and grpcio's
  aio client for `grpc-v2`. So KServe's `grpc-v2` costs it less than its `v2` (no httpx), and
  modelplane's costs it about a tenth more than its `v2` (protobuf messages on top of the same work).
- modelplane's `grpc-v2` used grpcio's aio client until 2026-12-08. A/B that day, the grpcio client
  (HEAD before the change, run from a copy) against the new one, two runs each, interleaved:
  `--paths modelplane-v2,modelplane-grpc-v2 --concurrency 1,16 --rounds 2 --duration 4`. grpcio:
  1,359 and 1,343 req/s at concurrency 1, 3,825 and 3,843 at 16, transformer CPU 454–457 and 270–272
  µs a request. modelplane's client: 1,954 and 1,913 req/s, 6,164 and 5,816, CPU 265–271 and 143–150
  µs. Its `v2` rows did not move (2,130–2,266 and 6,486–6,991 req/s in all four runs).
- Where KServe's `v2` time goes: a py-spy profile of its transformer at concurrency 16 (8 s at 200 Hz,
  2026-12-07) had 62% of the samples in httpx's `AsyncClient.post`: httpcore's connection pool
  bookkeeping (with a readability check of pooled connections on each request) and, 16% of all
  samples, httpcore's `current_async_library`, nearly all of it a failed import. pip's resolution of
  `kserve==0.21.0` today brings anyio 4.16, which no longer needs sniffio, so none is installed, and
  httpcore 1.0.9 tries `import sniffio` on every request, a search of the whole path each time. With
  sniffio put on the KServe transformer's path (a side run, not in the tables), its CPU per request
  fell from 3.1–3.6 ms to 2.3–2.4 ms at concurrency 16 and from 1.9–2.3 ms to 1.6–1.9 ms at
  concurrency 1: about a quarter and a sixth of its cost, which a KServe image built with pip today
  pays too. It does not touch `grpc-v2`.
- KServe's `v2` p99 at concurrency 16 swings between runs, from about 0.2 s to over 2 s (side runs of
  2026-12-07); the counters showed no listen-queue overflow and only a few retransmitted segments
  machine-wide, and its cause was not found. Read that p99 ratio as "far lower", not as a number.
- The body's data is flat (4 numbers, shape [1, 4]). With the nested form (`[[...]]`), which V2 allows
  as well and bench/gateway.py sends, KServe 0.21's `grpc-v2` transformer answers 500 `TypeError : must
  be real number, not list` (its `InferRequest.to_grpc` puts the nested list into `fp32_contents`);
  modelplane's answers it. The flat body keeps every row comparable.
- The predictor is the same process for every row, but its CPU per request is not: behind a
  transformer the requests come at a lower rate, with fewer of them per wake-up, and behind KServe's
  `v2` transformer each comes in two pieces, as httpx writes the headers and the body separately
  (strace on the predictor at concurrency 16, 2026-12-07: 2 reads and 5.7 `epoll_pwait` calls per
  request behind KServe's transformer, 1 read and 0.7 behind modelplane's). So the predictor column of
  the ratio table is a cost the transformer's client puts on the predictor, not a difference between
  predictors.
- The machine is shared with other work (see the load average): single runs vary by 2x and more, hence
  the interleaved rounds, the medians and the req/s ranges."""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def package_versions(python: str, names: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = '-'\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def collect_versions(kserve_python: Path, commit: str) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    here = package_versions(sys.executable, ["scikit-learn", "numpy", "grpcio", "httpx", "uvloop"])
    versions.update({f"{k} (current env)": v for k, v in here.items()})
    names = ["kserve", "fastapi", "uvicorn", "uvloop", "httpx", "grpcio", "orjson"]
    peer = package_versions(str(kserve_python), names)
    versions.update({f"{k} (kserve env)": v for k, v in peer.items()})
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    versions["wrk"] = ((wrk.stdout + wrk.stderr).strip().splitlines() or ["?"])[0]
    versions["modelplane code measured"] = commit
    return versions


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds; medians reported (default 5)"
    )
    parser.add_argument("--duration", type=float, default=6.0, help="seconds measured per row (default 6)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before each row (default 2)"
    )
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[1, 16],
        help="comma-separated (default 1,16)",
    )
    parser.add_argument("--paths", default=",".join(PATHS), help=f"any of {','.join(PATHS)} (default: all)")
    parser.add_argument(
        "--write-results", action="store_true", help=f'rewrite "## {SECTION}" in bench/RESULTS.md'
    )
    args = parser.parse_args()
    paths = [path for path in PATHS if path in args.paths.split(",")]
    unknown = set(args.paths.split(",")) - set(PATHS)
    if unknown or not paths:
        parser.error(f"unknown paths {sorted(unknown)}; choose from {','.join(PATHS)}")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: run `bash bench/setup.sh`")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a SIGTERM still stops the servers

    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    log("training the iris LogisticRegression")
    model = train_iris()
    import sklearn

    requirements = ["kserve==0.21.0", f"scikit-learn=={sklearn.__version__}", "joblib"]
    kserve_python = ensure_venv(KSERVE_ENV, requirements)
    commit = modelplane_commit()
    void: dict[str, str] = {}
    samples = measure(model, kserve_python, args, paths, void)
    if not samples:
        return 1
    markdown = render(samples, void, args, started, load_before, collect_versions(kserve_python, commit))
    print(markdown)
    if args.write_results:
        put_section(SECTION, f"## {SECTION}\n\n{INTRO}\n\n{markdown.rstrip()}\n")
        log(f"wrote the '## {SECTION}' section of bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
