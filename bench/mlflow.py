"""MLflow benchmark: the same MLflow model served by modelplane's mlflow runtime and by MLServer's.

The model (made here, saved once with MLflow into bench/.work/mlflow/model) is scikit-learn's
LogisticRegression on the iris table, saved with `mlflow.sklearn.save_model(...,
serialization_format="cloudpickle")` and a column-based signature (the table's four FP64 columns, by
name), as tests/server/mlflow_models.py makes one. Served by:

- modelplane    `python3 -m modelplane serve --model-dir <folder> --model-name iris --runtime mlflow
                --workers 1`, the checkout's code (on PYTHONPATH)
- mlserver      MLServer 1.7.1 with `mlserver_mlflow.MLflowRuntime` (mlserver-mlflow 1.7.1),
                `parallel_workers: 0` (inference in the server process, one process like modelplane's),
                `debug: false` (no access log)
- mlserver-pw1  the same with `parallel_workers: 1`, MLServer's default style: the HTTP process plus one
                inference worker process

MLServer runs from bench/.envs/mlflow-mlserver, created here on first use with the current environment's
scikit-learn and cloudpickle, so the one pickled model loads in both.

Load: V2 REST `POST /v2/models/iris/infer` with the four columns as FP64 inputs of shape [1] (the same
body for both), wrk at each concurrency (connections, one request in flight each), one thread. Each server
must first answer that body with the model's own class, and all of them with the same outputs; a run with
any error answer is void. Per row: req/s, p50, p99, the server's CPU per request; per server: its peak
resident memory.

    python3 bench/mlflow.py                     # 3 rounds x 3 servers x 2 rows x (8 + 2) s, about 5 min
    python3 bench/mlflow.py --write-results     # ... and rewrites "## MLflow models" in bench/RESULTS.md
"""

# ruff: noqa: E402 (imports after the sys.path fix below)
from __future__ import annotations

import os
import sys

from harness import free_port, log, modelplane_commit
from mlserver_home import write_mlserver_home
from results_file import put_section
from server_process import ServerProcess, group_peak_rss_mib, http_request
from venvs import ensure_venv
from wrk_load import Run, VoidRun, measured_wrk, run_wrk

# `python3 bench/mlflow.py` puts bench/ first on sys.path, where this very file would shadow the mlflow
# package (and a sibling script named like a module any other library); only the modules above come
# from bench/.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import datetime
import json
import logging
import platform
import shutil
import signal
import statistics
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work" / "mlflow"
SECTION = "MLflow models"

MODEL_NAME = "iris"
ROW_INDEX = 50  # iris row 50: [7.0, 3.2, 4.7, 1.4], class 1 (versicolor)
ALL_SERVERS = ["modelplane", "mlserver", "mlserver-pw1"]
MLSERVER_ENV = "mlflow-mlserver"
# mlflow 3.18.0, what the current environment's mlflow-skinny is, needs mlflow-tracing 3.18.0, which the
# package index did not have: the newest full mlflow that installs.
MLFLOW_PEER_VERSION = "3.17.2"


@dataclass
class MLflowModel:
    folder: Path  # holds MLmodel
    body: Path  # the V2 request
    expected: int  # the estimator's own class for the row


def save_model() -> MLflowModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.models
        import mlflow.sklearn

        logging.getLogger("mlflow").setLevel(logging.ERROR)  # its warning about pickled models
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        features, labels = load_iris(return_X_y=True, as_frame=True)
        estimator = LogisticRegression(max_iter=500).fit(features, labels)
        signature = mlflow.models.infer_signature(features, estimator.predict(features))
        folder = WORK / "model"
        shutil.rmtree(folder, ignore_errors=True)
        mlflow.sklearn.save_model(estimator, folder, signature=signature, serialization_format="cloudpickle")
    row = features.iloc[[ROW_INDEX]]
    expected = int(estimator.predict(row)[0])
    if expected != int(labels.iloc[ROW_INDEX]):
        raise SystemExit(f"the model misclassifies iris row {ROW_INDEX}; pick another row")
    inputs = [
        {"name": column, "shape": [1], "datatype": "FP64", "data": [float(row[column].iloc[0])]}
        for column in features.columns
    ]
    body = WORK / "v2_request.json"
    body.write_text(json.dumps({"inputs": inputs}))
    return MLflowModel(folder=folder, body=body, expected=expected)


def build_server(name: str, model: MLflowModel, mlserver_python: Path | None, tag: str) -> ServerProcess:
    http_port, grpc_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "MLSERVER_", "PYTHONPATH"))
    }
    ready = [(http_port, "/v2/health/ready"), (http_port, f"/v2/models/{MODEL_NAME}/ready")]
    logfile = WORK / "logs" / f"{name}-{tag}.log"
    if name == "modelplane":
        env["PYTHONPATH"] = str(REPO)  # the checkout's code, whatever is installed
        argv = [sys.executable, "-m", "modelplane", "serve", "--model-dir", str(model.folder)]
        argv += ["--model-name", MODEL_NAME, "--runtime", "mlflow", "--workers", "1", "--host", "127.0.0.1"]
        argv += ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
        return ServerProcess(name, argv, env, WORK, logfile, ready=ready, ports=[http_port, grpc_port])
    home = WORK / name
    shutil.rmtree(home, ignore_errors=True)
    workers = 0 if name == "mlserver" else 1
    metrics_port = write_mlserver_home(
        home,
        MODEL_NAME,
        "mlserver_mlflow.MLflowRuntime",
        str(model.folder),
        http_port,
        grpc_port,
        workers=workers,
    )
    return ServerProcess(
        name,
        [str(mlserver_python.parent / "mlserver"), "start", str(home)],
        env,
        home,
        logfile,
        ready=ready,
        ports=[http_port, grpc_port, metrics_port],
        stop_signal=signal.SIGINT,  # MLServer hangs on SIGTERM ("Waiting for background tasks")
    )


def outputs_of(body: bytes) -> list[dict]:
    """The answer's outputs, without what may differ between two right answers (their parameters)."""
    return [
        {key: output[key] for key in ("name", "datatype", "shape", "data")}
        for output in json.loads(body)["outputs"]
    ]


def verify(server: ServerProcess, model: MLflowModel) -> list[dict]:
    """The server's outputs for the body, which must hold the estimator's own class."""
    status, body = http_request(
        server.ready[0][0], "POST", f"/v2/models/{MODEL_NAME}/infer", model.body.read_bytes()
    )
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    outputs = outputs_of(body)
    data = outputs[0]["data"] if len(outputs) == 1 else None
    if data is None or [int(v) for v in data] != [model.expected]:
        raise RuntimeError(f"answered {outputs}, expected the one class {model.expected}")
    return outputs


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; medians reported (default 3)"
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per row (default 8)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before each row (default 2)"
    )
    parser.add_argument("--concurrency", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--servers", default=",".join(ALL_SERVERS), help=f"default {','.join(ALL_SERVERS)}")
    parser.add_argument("--check", action="store_true", help="start and check every server, measure nothing")
    parser.add_argument(
        "--write-results", action="store_true", help="rewrite our section of bench/RESULTS.md"
    )
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in ALL_SERVERS:
            parser.error(f"unknown server {s!r}")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: run `bash bench/setup.sh`")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a SIGTERM still stops the server under test

    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    log("saving the MLflow model")
    model = save_model()
    mlserver_python = None
    if any(s.startswith("mlserver") for s in servers):
        mlserver_python = ensure_venv(MLSERVER_ENV, mlserver_requirements())

    results: dict[tuple[str, int], list[Run]] = {}
    peak_rss: dict[str, list[float]] = {}
    answers: dict[str, list[dict]] = {}
    void: dict[str, str] = {}
    commits: dict[str, list[int]] = {}
    rounds = 1 if args.check else args.rounds
    url = f"/v2/models/{MODEL_NAME}/infer"
    for rnd in range(rounds):
        shift = rnd % len(servers)
        for name in servers[shift:] + servers[:shift]:
            if name in void:
                continue
            server = build_server(name, model, mlserver_python, f"r{rnd + 1}")
            log(f"round {rnd + 1}/{rounds}: {name}")
            if name == "modelplane":
                commits.setdefault(modelplane_commit(), []).append(rnd + 1)
            try:
                server.start()
                server.wait_ready()
                answers[name] = verify(server, model)
                if answers[name] != next(iter(answers.values())):
                    raise RuntimeError(
                        f"answered {answers[name]}, where {next(iter(answers))} answered "
                        f"{next(iter(answers.values()))}"
                    )
                if args.check:
                    log(f"{name}: answered {answers[name]}")
                    continue
                port = server.ready[0][0]
                for c in concurrencies:
                    target = f"http://127.0.0.1:{port}{url}"
                    run_wrk(target, c, args.warmup, model.body, "application/json")
                    r = measured_wrk(server.pgid, target, c, args.duration, model.body, "application/json")
                    results.setdefault((name, c), []).append(r)
                    log(
                        f"{name:12s} c={c:<3d} {r.rps:7.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms"
                        f"  CPU/req server {r.server_cpu_ms * 1000:5.0f} us  (load {r.load:.2f})"
                    )
                peak_rss.setdefault(name, []).append(group_peak_rss_mib(server.pgid))
            except (RuntimeError, VoidRun, OSError) as exc:
                log(f"{name}: VOID: {exc}")
                void[name] = str(exc)
            finally:
                server.stop()
    if args.check:
        return 1 if void else 0
    for key in [key for key in results if key[0] in void]:
        del results[key]

    markdown = render(
        results, peak_rss, answers, void, args, concurrencies, started, load_before, commits, mlserver_python
    )
    print(markdown)
    if args.write_results:
        put_section(SECTION, f"## {SECTION}\n\n{markdown.rstrip()}\n")
        log(f"wrote the '## {SECTION}' section of bench/RESULTS.md")
    return 0


def mlserver_requirements() -> list[str]:
    import cloudpickle
    import sklearn

    return [
        "mlserver==1.7.1",
        "mlserver-mlflow==1.7.1",
        f"mlflow=={MLFLOW_PEER_VERSION}",
        f"scikit-learn=={sklearn.__version__}",
        f"cloudpickle=={cloudpickle.__version__}",
        "uvloop<0.22",  # with 0.22+ MLServer's inference worker fails to load the model (parallel_workers 1)
    ]


def render(
    results, peak_rss, answers, void, args, concurrencies, started, load_before, commits, mlserver_python
) -> str:
    med = {
        key: (
            statistics.median(r.rps for r in runs),
            statistics.median(r.p50_ms for r in runs),
            statistics.median(r.p99_ms for r in runs),
            min(r.rps for r in runs),
            max(r.rps for r in runs),
            statistics.median(r.server_cpu_ms for r in runs) * 1000,
        )
        for key, runs in results.items()
    }
    loads = [r.load for runs in results.values() for r in runs]
    body = json.loads((WORK / "v2_request.json").read_text())
    md = [
        f"Run {started.strftime('%Y-%m-%d %H:%M UTC')} on {os.cpu_count()} cores ({cpu_model()}),"
        f" {memory_gib():.0f} GiB of memory, {platform.system()} {platform.release()}, shared with"
        f" other work: 1-minute load average {load_before[0]:.2f} at the start,"
        f" {min(loads, default=0):.2f}–{max(loads, default=0):.2f} during the runs; read ratios and medians.",
        "",
        "    python3 bench/mlflow.py " + " ".join(sys.argv[1:]),
        "",
        "The same MLflow model (scikit-learn's `LogisticRegression` on iris, `mlflow.sklearn.save_model(...,"
        ' serialization_format="cloudpickle")` with a column-based signature: four `double` columns by name)'
        " served by `modelplane serve --runtime mlflow --workers 1` and by MLServer 1.7.1 with mlserver-mlflow"
        " 1.7.1 (`mlserver_mlflow.MLflowRuntime`), `debug: false`: `mlserver` with `parallel_workers: 0` (in"
        " the server process), `mlserver-pw1` with `parallel_workers: 1` (one inference worker process)."
        " Every server answered the body below with the estimator's own class, and all with the same outputs,"
        " before it was loaded; a run with any error is void. wrk, one thread, one connection per unit of"
        f" concurrency, one request in flight each; {args.rounds} interleaved rounds (each server started,"
        f" measured on every row, stopped; order rotated) of {args.duration:g} s per row after {args.warmup:g} s"
        " of warm-up; medians of the rounds (req/s range in brackets). Server CPU µs/req: user+system CPU of"
        " the server's process group per request. Peak RSS: the largest resident memory (VmHWM) of the"
        " server's processes after its rows, summed over its processes (for `mlserver-pw1` the HTTP process"
        " and the worker), median of the rounds.",
        "",
        "Body (`POST /v2/models/iris/infer`), answered by every server with "
        f"`{json.dumps(next(iter(answers.values()), None))}`:",
        "",
        "    " + json.dumps(body),
        "",
    ]
    for c in concurrencies:
        md += [f"### V2 REST, concurrency {c}", ""]
        md.append(
            "| server | req/s | p50 ms | p99 ms | server CPU µs/req | peak RSS MiB"
            " | modelplane ÷ this: req/s | ÷ this: p50 | ÷ this: p99 |"
        )
        md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        mp = med.get(("modelplane", c))
        for name in ALL_SERVERS:
            row = med.get((name, c))
            if row is None:
                md.append(
                    f"| {name} | not measured{': ' + void[name] if name in void else ''} | | | | | | | |"
                )
                continue
            rps, p50, p99, lo, hi, cpu = row
            ratios = ["-", "-", "-"]
            if mp and name != "modelplane":
                ratios = [f"{mp[0] / rps:.2f}×", f"{mp[1] / p50:.2f}×", f"{mp[2] / p99:.2f}×"]
            rss = statistics.median(peak_rss[name]) if peak_rss.get(name) else float("nan")
            md.append(
                f"| {name} | {rps:,.0f} [{lo:,.0f}–{hi:,.0f}] | {p50:.2f} | {p99:.2f} | {cpu:,.0f} | {rss:,.0f}"
                f" | {' | '.join(ratios)} |"
            )
        md.append("")
    md += ["### Target", ""]
    for peer in ALL_SERVERS[1:]:
        for c in concurrencies:
            mp, other = med.get(("modelplane", c)), med.get((peer, c))
            if not (mp and other):
                md.append(f"- c={c} vs {peer}: not evaluated (a side was not measured)")
                continue
            ahead = mp[0] > other[0] and mp[1] <= other[1] and mp[2] <= other[2]
            md.append(
                f"- c={c} vs {peer}: req/s {mp[0] / other[0]:.2f}×, p50 {mp[1] / other[1]:.2f}×, p99"
                f" {mp[2] / other[2]:.2f}×: {'ahead' if ahead else 'NOT ahead'} (more req/s, no higher p50 or p99)"
            )
    md.append("")
    if void:
        md += ["Void:", ""] + [f"- {name}: {why}" for name, why in void.items()] + [""]
    versions = collect_versions(mlserver_python)
    if commits:
        versions["modelplane code measured"] = ", ".join(
            f"{rev} (rounds {','.join(map(str, r))})" for rev, r in commits.items()
        )
    md.append("Versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    return "\n".join(md) + "\n"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def memory_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("MemTotal:")) / 2**20
    except (OSError, StopIteration):
        return float("nan")


def collect_versions(mlserver_python: Path | None) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = '-'\n"
        "print(json.dumps(out))\n"
    )
    versions = {"python": platform.python_version()}
    names = ["mlflow-skinny", "scikit-learn", "pandas", "numpy", "uvloop"]
    here = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, check=True)
    versions.update({f"{k} (current env)": v for k, v in json.loads(here.stdout).items()})
    if mlserver_python:
        names = [
            "mlserver",
            "mlserver-mlflow",
            "mlflow",
            "scikit-learn",
            "pandas",
            "numpy",
            "uvicorn",
            "uvloop",
        ]
        peer = subprocess.run(
            [str(mlserver_python), "-c", code, *names], capture_output=True, text=True, check=True
        )
        versions.update({f"{k} (mlserver env)": v for k, v in json.loads(peer.stdout).items()})
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    versions["wrk"] = ((wrk.stdout + wrk.stderr).strip().splitlines() or ["?"])[0]
    return versions


if __name__ == "__main__":
    sys.exit(main())
