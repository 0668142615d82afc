"""TorchServe benchmark: the same `.mar` image classifier served by TorchServe itself and by modelplane.

The archive (built once per run with torch-model-archiver, TorchServe's own packer, under
bench/.work/torchserve/) holds torchvision's mobilenet_v3_small in eager mode (model file + state dict, random
weights with BatchNorm statistics calibrated on random pictures, so its answers depend on the picture) behind
TorchServe's stock `image_classifier` handler. The picture is scikit-learn's `china.jpg` (640 x 427, 196 KB).

- torchserve         `torchserve --start --foreground --ncs --disable-token-auth` (the installed PyPI package:
                     its Java frontend plus one Python worker), its own config.properties on loopback ports,
                     `POST /predictions/classifier` with the raw JPEG (TorchServe's own API: its fastest path,
                     and the one where its batching works)
- torchserve-kserve  the same with `service_envelope=kserve`: KServe's V1 `POST /v1/models/classifier:predict`
                     with `{"instances": [{"data": "<base64 JPEG>"}]}`; batchSize 1 only, because that envelope
                     answers a batch of N requests with one response (checked by the probe below)
- modelplane         `modelplane serve --model-dir <store> --workers 1` on the same store
                     (config/config.properties + model-store/classifier.mar), V1
                     `POST /v1/models/classifier:predict` with the same JSON body; also the raw JPEG to the same
                     path (one row `{"body": <bytes>}`, what TorchServe's native API hands the handler)

Both have one worker (one handler instance) and OMP_NUM_THREADS=1. Each runs batching off (batchSize 1) and
on (batchSize 8, maxBatchDelay 20 ms), at concurrency 1 and 16. Every server's answer is checked before load:
its top class must be the one the model gives in this process.

    python3 bench/torchserve.py                     # 3 rounds x 10 s per row (about 15 min), prints the tables
    python3 bench/torchserve.py --write-results     # ... and rewrites "## TorchServe" in bench/RESULTS.md
"""

# ruff: noqa: E402 (imports after the sys.path fix below)
from __future__ import annotations

import os
import sys

from harness import free_port, log, modelplane_commit
from results_file import put_section
from server_process import ServerProcess, http_request
from wrk_load import Run, VoidRun, measured_wrk, run_wrk

# `python3 bench/torchserve.py` puts bench/ first on sys.path, where a sibling script named like a module
# (torchserve!) would shadow it for every library we import; only the modules above come from bench/.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import base64
import concurrent.futures
import datetime
import json
import platform
import shutil
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work" / "torchserve"
SECTION = "TorchServe"

MODEL_NAME = "classifier"
ARCH = "mobilenet_v3_small"
THREADS = "1"  # OMP_NUM_THREADS for both servers: one core for inference, the other for the rest
MAX_BATCH_DELAY_MS = 20
ALL_SERVERS = ["torchserve", "torchserve-kserve", "modelplane"]

MODEL_PY = '''\
from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf


class ImageClassifier(MobileNetV3):
    """torchvision's mobilenet_v3_small, built with no arguments as TorchServe builds a model file's class."""

    def __init__(self):
        settings, last_channel = _mobilenet_v3_conf("mobilenet_v3_small")
        super().__init__(settings, last_channel)
'''


# --------------------------------------------------------------------------------------------- the model


@dataclass
class Picture:
    jpeg: Path  # the raw JPEG
    v1_json: Path  # {"instances": [{"data": "<base64>"}]}
    top_class: str  # what the model answers for it, computed here


def build_archive():
    """model-store/classifier.mar under WORK, packed by torch-model-archiver; (its path, the network)."""
    import torch

    source = WORK / "source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    (source / "model.py").write_text(MODEL_PY)
    net = _calibrated_net(source)
    torch.save(net.state_dict(), source / "weights.pt")
    (source / "index_to_name.json").write_text(json.dumps({str(i): f"class_{i}" for i in range(1000)}))
    store = WORK / "model-store"
    store.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "torch-model-archiver", "--model-name", MODEL_NAME, "--version", "1.0",
            "--model-file", str(source / "model.py"), "--serialized-file", str(source / "weights.pt"),
            "--handler", "image_classifier", "--extra-files", str(source / "index_to_name.json"),
            "--export-path", str(store), "--force",
        ],
        check=True,
    )  # fmt: skip
    return store / f"{MODEL_NAME}.mar", net


def _calibrated_net(source: Path):
    """The model file's class with random weights. Freshly initialised, its BatchNorm layers would pass
    near-zero activations on (every class scores about the same); their statistics are taken from random
    pictures instead, as a trained network's are taken from its data, so the answer depends on the picture."""
    import torch

    sys.path.insert(0, str(source))
    try:
        from model import ImageClassifier
    finally:
        sys.path.remove(str(source))
    torch.manual_seed(0)
    net = ImageClassifier().train()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # the plain average over the calibration batches
    with torch.no_grad():
        for _ in range(4):
            net(torch.randn(16, 3, 224, 224))
    return net.eval()


def prepare_picture(net) -> Picture:
    import sklearn.datasets
    import torch
    from PIL import Image
    from torchvision import transforms

    jpeg = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"
    v1_json = WORK / "v1_request.json"
    v1_json.write_text(json.dumps({"instances": [{"data": base64.b64encode(jpeg.read_bytes()).decode()}]}))
    # What TorchServe's image_classifier does to a picture, then the archived network.
    prepare = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )
    with torch.inference_mode():
        scores = net(prepare(Image.open(jpeg).convert("RGB"))[None])
    return Picture(jpeg=jpeg, v1_json=v1_json, top_class=f"class_{int(scores.argmax())}")


def snapshot(batch: int) -> str:
    """config.properties' model_snapshot: one worker, this batch size, the same for both servers."""
    version = {
        "defaultVersion": True,
        "marName": f"{MODEL_NAME}.mar",
        "minWorkers": 1,
        "maxWorkers": 1,
        "batchSize": batch,
        "maxBatchDelay": MAX_BATCH_DELAY_MS,
        "responseTimeout": 120,
    }
    return json.dumps({"name": "startup.cfg", "modelCount": 1, "models": {MODEL_NAME: {"1.0": version}}})


def write_store(archive: Path, batch: int) -> Path:
    """A KServe-style TorchServe model store for modelplane: config/config.properties + model-store/."""
    store = WORK / f"store-b{batch}"
    shutil.rmtree(store, ignore_errors=True)
    (store / "config").mkdir(parents=True)
    (store / "model-store").mkdir()
    os.link(archive, store / "model-store" / archive.name)
    (store / "config" / "config.properties").write_text(
        f"load_models=all\ndefault_workers_per_model=1\nmodel_snapshot={snapshot(batch)}\n"
    )
    return store


# --------------------------------------------------------------------------------------------- servers


@dataclass
class Request:
    """One kind of request a server is loaded with."""

    label: str  # as shown in the tables
    path: str
    body: Path
    content_type: str


def requests_for(name: str, picture: Picture) -> list[Request]:
    v1_path = f"/v1/models/{MODEL_NAME}:predict"
    v1 = Request("V1 JSON", v1_path, picture.v1_json, "application/json")
    if name == "torchserve":
        return [Request("raw JPEG /predictions", f"/predictions/{MODEL_NAME}", picture.jpeg, "image/jpeg")]
    if name == "torchserve-kserve":
        return [v1]
    return [v1, Request("raw JPEG V1 path", v1_path, picture.jpeg, "image/jpeg")]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TS_", "VIRTUAL_ENV"))}
    env["OMP_NUM_THREADS"] = THREADS
    return env


def build_server(name: str, batch: int, archive: Path, tag: str) -> ServerProcess:
    http_port = free_port()
    logs = WORK / "logs"
    if name == "modelplane":
        grpc_port = free_port()
        argv = [
            shutil.which("modelplane") or "modelplane",
            "serve",
            "--model-dir",
            str(write_store(archive, batch)),
        ]
        argv += ["--http-port", str(http_port), "--grpc-port", str(grpc_port), "--workers", "1"]
        argv += ["--host", "127.0.0.1"]
        return ServerProcess(
            name,
            argv,
            base_env(),
            WORK,
            logs / f"{name}-b{batch}-{tag}.log",
            ready=[(http_port, f"/v2/models/{MODEL_NAME}/ready")],
            ports=[http_port, grpc_port],
        )
    # TorchServe: a config.properties of its own on loopback ports; its launcher's pid file (normally
    # /tmp/.model_server.pid, which would refuse a second TorchServe on the machine) and its logs in WORK.
    run = WORK / f"{name}-b{batch}"
    shutil.rmtree(run, ignore_errors=True)
    (run / "tmp").mkdir(parents=True)
    management, metrics = free_port(), free_port()
    lines = [
        f"inference_address=http://127.0.0.1:{http_port}",
        f"management_address=http://127.0.0.1:{management}",
        f"metrics_address=http://127.0.0.1:{metrics}",
        f"model_store={archive.parent}",
        "disable_token_authorization=true",
        "default_workers_per_model=1",
        f"model_snapshot={snapshot(batch)}",
    ]
    if name == "torchserve-kserve":
        lines.append("service_envelope=kserve")
    (run / "config.properties").write_text("\n".join(lines) + "\n")
    env = base_env()
    env.update(TMPDIR=str(run / "tmp"), LOG_LOCATION=str(run / "logs"), METRICS_LOCATION=str(run / "logs"))
    argv = [
        shutil.which("torchserve") or "torchserve",
        "--start",
        "--foreground",
        "--ncs",
        "--disable-token-auth",
    ]
    argv += ["--ts-config", str(run / "config.properties"), "--model-store", str(archive.parent)]
    return ServerProcess(
        name,
        argv,
        env,
        run,
        logs / f"{name}-b{batch}-{tag}.log",
        ready=[(http_port, "/ping"), (management, f"/models/{MODEL_NAME}")],
        ports=[http_port, management, metrics],
    )


def top_class(name: str, body: bytes) -> str:
    """The top class of a server's answer: TorchServe's native API answers the handler's result (label ->
    score), V1 answers {"predictions": [that]}."""
    answer = json.loads(body)
    scores = answer if name == "torchserve" else answer["predictions"][0]
    return max(scores, key=scores.get)


def verify(server: ServerProcess, picture: Picture) -> None:
    """Every request kind must answer the model's top class (a worker may still be starting: 503 is retried)."""
    port = server.ready[0][0]
    for request in requests_for(server.name, picture):
        for _ in range(120):
            status, body = http_request(
                port, "POST", request.path, request.body.read_bytes(), request.content_type
            )
            if status != 503:
                break
            time.sleep(0.5)
        if status != 200:
            raise RuntimeError(f"{request.label}: HTTP {status}: {body[:300]!r}")
        got = top_class(server.name, body)
        if got != picture.top_class:
            raise RuntimeError(f"{request.label}: top class {got}, expected {picture.top_class}")


def probe_kserve_batching(archive: Path, picture: Picture, batch: int) -> str:
    """TorchServe with service_envelope=kserve and batchSize > 1, sent `batch` V1 requests at once: what
    comes back (its envelope answers a whole batch with the first request's result)."""
    server = build_server("torchserve-kserve", batch, archive, "probe")
    try:
        server.start()
        server.wait_ready()
        verify(server, picture)  # alone, a request is a batch of one
        body = picture.v1_json.read_bytes()
        with concurrent.futures.ThreadPoolExecutor(batch) as pool:
            answers = list(
                pool.map(
                    lambda _: http_request(
                        server.ready[0][0], "POST", f"/v1/models/{MODEL_NAME}:predict", body
                    ),
                    range(batch),
                )
            )
    finally:
        server.stop()
    failed = [(status, json.loads(text).get("message", "")) for status, text in answers if status != 200]
    messages = sorted({f"HTTP {status} {message!r}" for status, message in failed})
    return (
        f"{batch} concurrent V1 requests to TorchServe with service_envelope=kserve and batchSize {batch}:"
        f" {len(answers) - len(failed)} answered 200, {len(failed)} failed ({'; '.join(messages) or '-'})"
    )


# --------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; medians reported (default 3)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per row (default 10)")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of load before each row (default 3)"
    )
    parser.add_argument("--concurrency", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--batch", default="1,8", help="batchSize values, comma-separated (default 1,8)")
    parser.add_argument("--servers", default=",".join(ALL_SERVERS), help=f"default {','.join(ALL_SERVERS)}")
    parser.add_argument("--no-probe", action="store_true", help="skip the kserve envelope batching probe")
    parser.add_argument(
        "--write-results", action="store_true", help="rewrite our section of bench/RESULTS.md"
    )
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    batches = [int(b) for b in args.batch.split(",")]
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in ALL_SERVERS:
            parser.error(f"unknown server {s!r}")
    for tool in ("wrk", "java", "torchserve", "torch-model-archiver"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run `bash bench/setup.sh`")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a SIGTERM still stops the server under test

    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    log(f"packing {ARCH} into {MODEL_NAME}.mar with torch-model-archiver")
    archive, net = build_archive()
    picture = prepare_picture(net)
    log(f"the model's top class for {picture.jpeg.name}: {picture.top_class}")

    probe = ""
    if "torchserve-kserve" in servers and any(b > 1 for b in batches) and not args.no_probe:
        probe = probe_kserve_batching(archive, picture, max(batches))
        log(probe)

    # The TorchServe kserve envelope is measured without batching only (see the probe).
    variants = [(name, b) for b in batches for name in servers if not (name == "torchserve-kserve" and b > 1)]
    results: dict[tuple[str, int, str, int], list[Run]] = {}
    void: dict[tuple[str, int], str] = {}
    commits: dict[str, list[int]] = {}
    for rnd in range(args.rounds):
        shift = rnd % len(variants)
        for name, batch in variants[shift:] + variants[:shift]:
            if (name, batch) in void:
                continue
            server = build_server(name, batch, archive, f"r{rnd + 1}")
            log(f"round {rnd + 1}/{args.rounds}: {name} batchSize {batch}")
            if name == "modelplane":
                rounds = commits.setdefault(modelplane_commit(), [])
                rounds += [] if rnd + 1 in rounds else [rnd + 1]
            try:
                server.start()
                server.wait_ready()
                verify(server, picture)
                port = server.ready[0][0]
                for request in requests_for(name, picture):
                    url = f"http://127.0.0.1:{port}{request.path}"
                    for c in concurrencies:
                        run_wrk(url, c, args.warmup, request.body, request.content_type)
                        r = measured_wrk(
                            server.pgid, url, c, args.duration, request.body, request.content_type
                        )
                        results.setdefault((name, batch, request.label, c), []).append(r)
                        log(
                            f"{name:17s} b={batch} {request.label:22s} c={c:<3d} {r.rps:7.1f} img/s"
                            f"  p50 {r.p50_ms:7.1f} ms  p99 {r.p99_ms:7.1f} ms  CPU/req server"
                            f" {r.server_cpu_ms:5.1f} ms wrk {r.client_cpu_ms:4.2f} ms  (load {r.load:.2f})"
                        )
            except (RuntimeError, VoidRun) as exc:
                log(f"{name} batchSize {batch}: VOID: {exc}")
                void[(name, batch)] = str(exc)
            finally:
                server.stop()
    for key in [key for key in results if (key[0], key[1]) in void]:
        del results[key]

    markdown = render(results, void, probe, args, concurrencies, batches, started, load_before, commits)
    print(markdown)
    if args.write_results:
        put_section(SECTION, f"## {SECTION}\n\n{markdown.rstrip()}\n")
        log(f"wrote the '## {SECTION}' section of bench/RESULTS.md")
    return 0


# --------------------------------------------------------------------------------------------- report


def render(results, void, probe, args, concurrencies, batches, started, load_before, commits) -> str:
    med = {
        key: (
            statistics.median(r.rps for r in runs),
            statistics.median(r.p50_ms for r in runs),
            statistics.median(r.p99_ms for r in runs),
            min(r.rps for r in runs),
            max(r.rps for r in runs),
            statistics.median(r.server_cpu_ms for r in runs),
            len(runs),
        )
        for key, runs in results.items()
    }
    loads = [r.load for runs in results.values() for r in runs]
    md = [
        f"Run {started.strftime('%Y-%m-%d %H:%M UTC')} on {os.cpu_count()} cores ({cpu_model()}), shared with"
        f" other work: 1-minute load average {load_before[0]:.2f} at the start,"
        f" {min(loads, default=0):.2f}–{max(loads, default=0):.2f} during the runs; read ratios and medians.",
        "",
        "    python3 bench/torchserve.py " + " ".join(sys.argv[1:]),
        "",
        f"The same `{MODEL_NAME}.mar` (torchvision's {ARCH}, eager mode, random weights with calibrated"
        " BatchNorm statistics, TorchServe's stock `image_classifier` handler) served by TorchServe"
        " (`torchserve --start --foreground --ncs --disable-token-auth`, Java frontend + one Python worker,"
        " default logging) and by `modelplane serve --model-dir <store> --workers 1`; one worker each,"
        f" OMP_NUM_THREADS={THREADS} for both; batchSize 1 (off) or 8 (maxBatchDelay {MAX_BATCH_DELAY_MS} ms),"
        " the same model_snapshot for both. Picture: scikit-learn's `china.jpg` (640 x 427, 196 KB), as the raw"
        ' JPEG or base64 in V1 `{"instances": [{"data": ...}]}` (262 KB). wrk, one thread, one connection per'
        " unit of concurrency, one request in flight each;"
        f" {args.rounds} interleaved rounds of {args.duration:g} s per row after {args.warmup:g} s of warm-up;"
        " medians of the rounds (images/s range in brackets). Every server answered the model's top class"
        " before it was loaded; a run with any error is void. Server CPU ms/image: user+system CPU of the"
        " server's process group (TorchServe: Java and its worker) per request.",
        "",
    ]
    mp_main = "V1 JSON"
    for batch in batches:
        title = "batching off (batchSize 1)" if batch == 1 else f"batching on (batchSize {batch})"
        md += [f"### {title}", ""]
        md.append(
            "| c | server | request | images/s | p50 ms | p99 ms | server CPU ms/image "
            "| modelplane V1 ÷ this: images/s | ÷ this: p99 |"
        )
        md.append("|---:|---|---|---:|---:|---:|---:|---:|---:|")
        for c in concurrencies:
            mp = med.get(("modelplane", batch, mp_main, c))
            for name in ALL_SERVERS:
                labels = sorted({key[2] for key in med if key[0] == name and key[1] == batch and key[3] == c})
                for label in labels:
                    rps, p50, p99, lo, hi, cpu, _ = med[(name, batch, label, c)]
                    ratio = ratio_p99 = "-"
                    if mp and name != "modelplane":
                        ratio, ratio_p99 = f"{mp[0] / rps:.2f}×", f"{mp[2] / p99:.2f}×"
                    md.append(
                        f"| {c} | {name} | {label} | {rps:.1f} [{lo:.1f}–{hi:.1f}] | {p50:.1f} | {p99:.1f}"
                        f" | {cpu:.1f} | {ratio} | {ratio_p99} |"
                    )
        md.append("")
    md += ["### Targets", ""]
    cmax, bmax = max(concurrencies), max(batches)
    mp, ts = (
        med.get(("modelplane", bmax, mp_main, cmax)),
        med.get(("torchserve", bmax, "raw JPEG /predictions", cmax)),
    )
    if mp and ts and bmax > 1:
        md.append(
            f"- c={cmax}, batchSize {bmax}: modelplane (V1) answers {mp[0] / ts[0]:.2f}× TorchServe's images/s"
            f" (target ≥ 2×): {'met' if mp[0] >= 2 * ts[0] else 'MISSED'}"
        )
        md.append(
            f"- c={cmax}, batchSize {bmax}: modelplane's p99 is {mp[2] / ts[2]:.2f}× TorchServe's (target < 1×):"
            f" {'met' if mp[2] < ts[2] else 'MISSED'}"
        )
    else:
        md.append("- not evaluated: the batching rows at the highest concurrency were not measured on both")
    md.append("")
    if probe:
        md += [f"TorchServe's kserve envelope with batching: {probe}.", ""]
    if void:
        md += (
            ["Void:", ""]
            + [f"- {name} batchSize {batch}: {why}" for (name, batch), why in void.items()]
            + [""]
        )
    versions = collect_versions()
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


def collect_versions() -> dict[str, str]:
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for package in ("torch", "torchvision", "torchserve", "torch-model-archiver", "pillow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "-"
    java = subprocess.run(["java", "-version"], capture_output=True, text=True)
    versions["java"] = (java.stderr or java.stdout).strip().splitlines()[0]
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    versions["wrk"] = ((wrk.stdout + wrk.stderr).strip().splitlines() or ["?"])[0]
    return versions


if __name__ == "__main__":
    sys.exit(main())
