"""TorchScript benchmark: the same TorchScript program served by modelplane and by a KServe 0.21 custom model.

The program (made here, saved once with torch.jit.save as bench/.work/torchscript/model/model.pt) is a small
MLP: 64 FP32 features -> 256 -> 256 -> 10 scores, ReLU between, random weights (seeded). Served by:

- modelplane  `modelplane serve --model-dir <folder> --model-name mlp --runtime pytorch --workers 1`
- kserve      KServe 0.21's Python ModelServer with a custom `kserve.Model` (peers/kserve_torchscript.py):
              `torch.jit.load`, predict under `torch.inference_mode` on V1 instances and V2 inputs, the way a
              KServe user writes it (KServe serves TorchScript itself only through Triton); 1 worker, logging
              off (`--configure_logging false --enable_latency_logging false`, PYTHONWARNINGS=ignore); from
              bench/.envs/ts-kserve, a venv that sees the current environment's torch

Both with OMP_NUM_THREADS=1. Load: V1 `POST /v1/models/mlp:predict` `{"instances": [[64 floats]]}` and V2
`POST /v2/models/mlp/infer` (one FP32 input, shape [1, 64], JSON), at concurrency 1 and 16, with wrk. Each
server's answers over both protocols are checked first against the program's own output here.

    python3 bench/torchscript.py                     # 3 rounds x 10 s per row (about 8 min), prints the tables
    python3 bench/torchscript.py --write-results     # ... and rewrites "## TorchScript" in bench/RESULTS.md
"""

# ruff: noqa: E402 (imports after the sys.path fix below)
from __future__ import annotations

import os
import sys

from harness import free_port, log, modelplane_commit
from results_file import put_section
from server_process import ServerProcess, http_request
from venvs import ensure_venv
from wrk_load import Run, VoidRun, measured_wrk, run_wrk

# `python3 bench/torchscript.py` puts bench/ first on sys.path, where a sibling script named like a module
# would shadow it for every library we import; only the modules above come from bench/.
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
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work" / "torchscript"
SECTION = "TorchScript"

MODEL_NAME = "mlp"
FEATURES, HIDDEN, CLASSES = 64, 256, 10
THREADS = "1"  # OMP_NUM_THREADS for both servers
ALL_SERVERS = ["modelplane", "kserve"]
PROTOCOLS = ["v1", "v2"]
KSERVE_ENV = "ts-kserve"


@dataclass
class Program:
    folder: Path  # holds model.pt
    row: list[float]
    expected: np.ndarray  # the program's scores for `row`, computed here


def make_program() -> Program:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(FEATURES, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, CLASSES),
    ).eval()
    folder = WORK / "model"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with warnings.catch_warnings():  # torch 2.14 calls TorchScript deprecated; KServe users still ship it
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(net), folder / "model.pt")
    row = [round(float(v), 4) for v in torch.randn(FEATURES)]
    with torch.inference_mode():
        expected = net(torch.tensor([row], dtype=torch.float32)).numpy()[0]
    return Program(folder=folder, row=row, expected=expected)


@dataclass
class Request:
    path: str
    body: Path


def write_requests(program: Program) -> dict[str, Request]:
    v1 = WORK / "v1_request.json"
    v1.write_text(json.dumps({"instances": [program.row]}))
    v2 = WORK / "v2_request.json"
    v2.write_text(
        json.dumps(
            {"inputs": [{"name": "input-0", "shape": [1, FEATURES], "datatype": "FP32", "data": program.row}]}
        )
    )
    return {
        "v1": Request(f"/v1/models/{MODEL_NAME}:predict", v1),
        "v2": Request(f"/v2/models/{MODEL_NAME}/infer", v2),
    }


def scores(protocol: str, body: bytes) -> np.ndarray:
    answer = json.loads(body)
    if protocol == "v1":
        return np.asarray(answer["predictions"][0], dtype=np.float32)
    return np.asarray(answer["outputs"][0]["data"], dtype=np.float32).reshape(-1)


def build_server(name: str, program: Program, kserve_python: Path | None, tag: str) -> ServerProcess:
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = THREADS
    if name == "modelplane":
        argv = [shutil.which("modelplane") or "modelplane", "serve", "--model-dir", str(program.folder)]
        argv += ["--model-name", MODEL_NAME, "--runtime", "pytorch", "--workers", "1", "--host", "127.0.0.1"]
    else:
        argv = [
            str(kserve_python),
            str(BENCH / "peers" / "kserve_torchscript.py"),
            "--model_dir",
            str(program.folder),
        ]
        argv += ["--model_name", MODEL_NAME, "--workers", "1"]
        argv += ["--configure_logging", "false", "--enable_latency_logging", "false"]
        env["PYTHONWARNINGS"] = "ignore"
    argv += ["--http_port", str(http_port), "--grpc_port", str(grpc_port)]
    return ServerProcess(
        name,
        argv,
        env,
        WORK,
        WORK / "logs" / f"{name}-{tag}.log",
        ready=[(http_port, "/v2/health/ready"), (http_port, f"/v2/models/{MODEL_NAME}/ready")],
        ports=[http_port, grpc_port],
    )


def verify(server: ServerProcess, program: Program, requests: dict[str, Request]) -> None:
    port = server.ready[0][0]
    for protocol, request in requests.items():
        status, body = http_request(port, "POST", request.path, request.body.read_bytes())
        if status != 200:
            raise RuntimeError(f"{protocol}: HTTP {status}: {body[:300]!r}")
        got = scores(protocol, body)
        if got.shape != program.expected.shape or not np.allclose(got, program.expected, atol=1e-4):
            raise RuntimeError(f"{protocol}: answered {got}, expected {program.expected}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; medians reported (default 3)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per row (default 10)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before each row (default 2)"
    )
    parser.add_argument("--concurrency", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--protocols", default="v1,v2", help="comma-separated (default v1,v2)")
    parser.add_argument("--servers", default=",".join(ALL_SERVERS), help=f"default {','.join(ALL_SERVERS)}")
    parser.add_argument(
        "--write-results", action="store_true", help="rewrite our section of bench/RESULTS.md"
    )
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    protocols = [p for p in args.protocols.split(",") if p]
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in ALL_SERVERS:
            parser.error(f"unknown server {s!r}")
    for p in protocols:
        if p not in PROTOCOLS:
            parser.error(f"unknown protocol {p!r}")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: run `bash bench/setup.sh`")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a SIGTERM still stops the server under test

    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    program = make_program()
    requests = write_requests(program)
    kserve_python = None
    if "kserve" in servers:
        kserve_python = ensure_venv(KSERVE_ENV, ["kserve==0.21.0"], system_site_packages=True)

    results: dict[tuple[str, str, int], list[Run]] = {}
    void: dict[str, str] = {}
    commits: dict[str, list[int]] = {}
    for rnd in range(args.rounds):
        shift = rnd % len(servers)
        for name in servers[shift:] + servers[:shift]:
            if name in void:
                continue
            server = build_server(name, program, kserve_python, f"r{rnd + 1}")
            log(f"round {rnd + 1}/{args.rounds}: {name}")
            if name == "modelplane":
                rounds = commits.setdefault(modelplane_commit(), [])
                rounds += [] if rnd + 1 in rounds else [rnd + 1]
            try:
                server.start()
                server.wait_ready()
                verify(server, program, requests)
                port = server.ready[0][0]
                for protocol in protocols:
                    url = f"http://127.0.0.1:{port}{requests[protocol].path}"
                    body = requests[protocol].body
                    for c in concurrencies:
                        run_wrk(url, c, args.warmup, body, "application/json")
                        r = measured_wrk(server.pgid, url, c, args.duration, body, "application/json")
                        results.setdefault((name, protocol, c), []).append(r)
                        log(
                            f"{name:10s} {protocol} c={c:<3d} {r.rps:8.0f} req/s  p50 {r.p50_ms:6.2f} ms"
                            f"  p99 {r.p99_ms:6.2f} ms  CPU/req server {r.server_cpu_ms * 1000:5.0f} us"
                            f" wrk {r.client_cpu_ms * 1000:4.0f} us  (load {r.load:.2f})"
                        )
            except (RuntimeError, VoidRun) as exc:
                log(f"{name}: VOID: {exc}")
                void[name] = str(exc)
            finally:
                server.stop()
    for key in [key for key in results if key[0] in void]:
        del results[key]

    markdown = render(
        results, void, args, protocols, concurrencies, started, load_before, commits, kserve_python
    )
    print(markdown)
    if args.write_results:
        put_section(SECTION, f"## {SECTION}\n\n{markdown.rstrip()}\n")
        log(f"wrote the '## {SECTION}' section of bench/RESULTS.md")
    return 0


def render(
    results, void, args, protocols, concurrencies, started, load_before, commits, kserve_python
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
    md = [
        f"Run {started.strftime('%Y-%m-%d %H:%M UTC')} on {os.cpu_count()} cores ({cpu_model()}), shared with"
        f" other work: 1-minute load average {load_before[0]:.2f} at the start,"
        f" {min(loads, default=0):.2f}–{max(loads, default=0):.2f} during the runs; read ratios and medians.",
        "",
        "    python3 bench/torchscript.py " + " ".join(sys.argv[1:]),
        "",
        f"The same TorchScript program (an MLP, {FEATURES} FP32 features → {HIDDEN} → {HIDDEN} → {CLASSES},"
        " `torch.jit.script`, random weights) served by `modelplane serve --runtime pytorch --workers 1` and by"
        " KServe 0.21's ModelServer with a custom `kserve.Model` (peers/kserve_torchscript.py: `torch.jit.load`,"
        " predict under `torch.inference_mode`), 1 worker, logging off; OMP_NUM_THREADS=1 for both. V1:"
        f' `{{"instances": [[{FEATURES} floats]]}}`; V2: one FP32 input of shape [1, {FEATURES}], JSON. wrk, one'
        " thread, one connection per unit of concurrency, one request in flight each;"
        f" {args.rounds} interleaved rounds of {args.duration:g} s per row after {args.warmup:g} s of warm-up;"
        " medians of the rounds (req/s range in brackets). Every server answered the program's own scores on"
        " both protocols before it was loaded; a run with any error is void. Server CPU µs/req: user+system CPU"
        " of the server's process group per request.",
        "",
    ]
    for protocol in protocols:
        for c in concurrencies:
            md += [f"### {protocol.upper()} REST, concurrency {c}", ""]
            md.append(
                "| server | req/s | p50 ms | p99 ms | server CPU µs/req | modelplane ÷ this: req/s | ÷ this: p99 |"
            )
            md.append("|---|---:|---:|---:|---:|---:|---:|")
            mp = med.get(("modelplane", protocol, c))
            for name in ALL_SERVERS:
                row = med.get((name, protocol, c))
                if row is None:
                    md.append(
                        f"| {name} | not measured{': ' + void[name] if name in void else ''} | | | | | |"
                    )
                    continue
                rps, p50, p99, lo, hi, cpu = row
                ratio = ratio_p99 = "-"
                if mp and name != "modelplane":
                    ratio, ratio_p99 = f"{mp[0] / rps:.2f}×", f"{mp[2] / p99:.2f}×"
                md.append(
                    f"| {name} | {rps:,.0f} [{lo:,.0f}–{hi:,.0f}] | {p50:.2f} | {p99:.2f} | {cpu:,.0f}"
                    f" | {ratio} | {ratio_p99} |"
                )
            md.append("")
    md += ["### Targets", ""]
    cmax = max(concurrencies)
    for protocol in protocols:
        mp, ks = med.get(("modelplane", protocol, cmax)), med.get(("kserve", protocol, cmax))
        if mp and ks:
            md.append(
                f"- {protocol.upper()} c={cmax}: modelplane answers {mp[0] / ks[0]:.2f}× KServe's req/s (target ≥ 2×):"
                f" {'met' if mp[0] >= 2 * ks[0] else 'MISSED'}; its p99 is {mp[2] / ks[2]:.2f}× KServe's"
                f" (target < 1×): {'met' if mp[2] < ks[2] else 'MISSED'}"
            )
        else:
            md.append(f"- {protocol.upper()} c={cmax}: not evaluated (a side was not measured)")
    md.append("")
    if void:
        md += ["Void:", ""] + [f"- {name}: {why}" for name, why in void.items()] + [""]
    versions = collect_versions(kserve_python)
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


def collect_versions(kserve_python: Path | None) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = '-'\n"
        "print(json.dumps(out))\n"
    )
    versions = {"python": platform.python_version()}
    names = ["torch", "numpy", "orjson"]
    here = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, check=True)
    versions.update({f"{k} (current env)": v for k, v in json.loads(here.stdout).items()})
    if kserve_python:
        names = ["kserve", "torch", "fastapi", "uvicorn", "uvloop"]
        peer = subprocess.run(
            [str(kserve_python), "-c", code, *names], capture_output=True, text=True, check=True
        )
        versions.update({f"{k} (kserve env)": v for k, v in json.loads(peer.stdout).items()})
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    versions["wrk"] = ((wrk.stdout + wrk.stderr).strip().splitlines() or ["?"])[0]
    return versions


if __name__ == "__main__":
    sys.exit(main())
