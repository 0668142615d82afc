"""ModelMesh benchmark: iris models served on demand by a runtime's pool on `modelplane up`.

One `modelplane up`, two multi-model sklearn runtimes of one replica each, and ModelMesh
InferenceServices (`serving.kserve.io/deploymentMode: ModelMesh`), each an iris LogisticRegression
trained here (`pvc://bench/iris-<n>`):

- measure  `--measure` services (default 50) on a runtime with the default memory (2Gi, 128Mi kept for
           the server: no eviction). Each one's first request through the gateway is timed: the model
           is loaded on demand (placement, fetch, load through the repository API) while the request
           waits. Then a loaded model's warm latency: `--warm` sequential requests (default 300). The
           replica's memory (its processes' resident memory, /proc) is read before the first load and
           after each, and the sizes the platform measured for each model are read from its log.
- fill     `--services` services (default 50) on a runtime whose replica keeps room for `--fit` models
           (default 10) by the median size measured above. Each one's first request is timed in turn;
           the log says how many models the replica loaded before the first eviction, and the cold
           requests after it include unloading the least recently used model.

ModelMesh Serving publishes no figures to compare with: these are modelplane's own.

    python3 bench/modelmesh.py                   # prints the table
    python3 bench/modelmesh.py --write-results   # ... and rewrites "## ModelMesh" in bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import log
from platform_startup import Up
from results_file import put_section

from modelplane.local.replicas.memory_watch import tree_memory

API = "/apis/serving.kserve.io"
ISVCS = f"{API}/v1beta1/namespaces/default/inferenceservices"
RUNTIMES = f"{API}/v1alpha1/namespaces/default/servingruntimes"
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
MIB = 1024**2
REPLICA_MEMORY = 2 * 1024 * MIB  # KServe's default for a container that sets none
DEFAULT_BUFFER = 128 * MIB  # builtInAdapter.memBufferBytes' default
SIZE = r"([\d.]+(?:Ki|Mi))"
LOADED = re.compile(rf"default/(\S+) loaded on \S+ \({SIZE}: files {SIZE}, memory grown {SIZE}\)")
UNLOADED = re.compile(r"default/(\S+) unloaded from \S+ to make room")


def build_models(root: Path, count: int) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    for index in range(count):
        folder = root / f"iris-{index}"
        folder.mkdir(parents=True, exist_ok=True)
        model = LogisticRegression(max_iter=1000, C=1.0 + index / 100).fit(features, labels)
        joblib.dump(model, folder / "model.joblib")


def runtime(name: str, for_models: int | None) -> dict:
    spec: dict = {
        "multiModel": True,
        "replicas": 1,
        "supportedModelFormats": [{"name": "sklearn", "autoSelect": False}],
        "containers": [
            {
                "name": "kserve-container",
                "image": "kserve/sklearnserver:latest",
                "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
            }
        ],
    }
    if for_models is not None:
        spec["builtInAdapter"] = {"memBufferBytes": REPLICA_MEMORY - for_models}
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {"name": name},
        "spec": spec,
    }


def service(name: str, model: int, runtime_name: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": {"serving.kserve.io/deploymentMode": "ModelMesh"}},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "runtime": runtime_name,
                    "storageUri": f"pvc://bench/iris-{model}",
                }
            }
        },
    }


def create_services(up: Up, runtime_name: str, names: list[str], first_model: int) -> None:
    for offset, name in enumerate(names):
        up.api.post(ISVCS, json=service(name, first_model + offset, runtime_name)).raise_for_status()
    deadline = time.monotonic() + 600
    waiting = set(names)
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not Ready after 600 s: {sorted(waiting)}")
        for name in sorted(waiting):
            status = up.api.get(f"{ISVCS}/{name}").json().get("status") or {}
            if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []):
                waiting.discard(name)
        time.sleep(0.2)


def predict(up: Up, name: str) -> float:
    """Seconds for one V1 prediction through the gateway (which waits while the model loads)."""
    started = time.perf_counter()
    response = up.gateway.post(
        f"/v1/models/{name}:predict", json=IRIS, headers={"host": f"{name}.default.localhost"}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.json() != {"predictions": [1]}:
        raise RuntimeError(f"{name}: {response.status_code} {response.text}")
    return elapsed


def pool_replica_memory(home: Path, runtime_name: str) -> int | None:
    """The resident memory of the pool replica's processes (None until it runs)."""
    marker = f"modelmesh-serving-{runtime_name}-predictor"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(home) in cmdline and marker in cmdline and " up " not in cmdline:
            return tree_memory(int(entry.name))
    return None


def sizes_logged(home: Path, names: set[str]) -> list[tuple[float, float, float]]:
    """(size, files, memory grown) in MiB of each load of these models, from `modelplane up`'s log."""
    found = []
    for line in (home / "up.log").read_text(errors="replace").splitlines():
        match = LOADED.search(line)
        if match and match.group(1) in names:
            found.append((_mib(match.group(2)), _mib(match.group(3)), _mib(match.group(4))))
    return found


def _mib(size: str) -> float:
    return float(size[:-2]) / (1024 if size.endswith("Ki") else 1)


def loads_before_first_eviction(home: Path, names: set[str]) -> int | None:
    loads = 0
    for line in (home / "up.log").read_text(errors="replace").splitlines():
        loaded, unloaded = LOADED.search(line), UNLOADED.search(line)
        if loaded and loaded.group(1) in names:
            loads += 1
        elif unloaded and unloaded.group(1) in names:
            return loads
    return None


def measure(up: Up, home: Path, count: int, warm: int) -> dict:
    up.api.post(RUNTIMES, json=runtime("mm-iris", None)).raise_for_status()
    names = [f"measure-{i}" for i in range(count)]
    create_services(up, "mm-iris", names, 0)
    before = pool_replica_memory(home, "mm-iris")
    cold, memory = [], []
    for name in names:
        cold.append(predict(up, name))
        memory.append(pool_replica_memory(home, "mm-iris"))
        log(f"{name}: first request {cold[-1] * 1000:.0f} ms, replica {memory[-1] / MIB:.1f}Mi")
    for _ in range(20):
        predict(up, names[-1])
    latencies = sorted(predict(up, names[-1]) for _ in range(warm))
    sizes = sizes_logged(home, set(names))
    # The first load of a replica also brings scikit-learn into memory: the models' share is what the
    # replica grew by from the first loaded model to the last.
    per_model = (memory[-1] - memory[0]) / (count - 1)
    return {
        "cold": cold,
        "warm_p50": latencies[len(latencies) // 2],
        "warm_p90": latencies[int(len(latencies) * 0.9)],
        "before": before,
        "after_first": memory[0],
        "after_all": memory[-1],
        "per_model_rss": per_model,
        "sizes": sizes[1:],  # the first load counts files only
    }


def fill(up: Up, home: Path, count: int, fit: int, largest_mib: float) -> dict:
    """Room for `fit` models of the largest size measured: each fits, and eviction starts once the
    replica holds `fit` of them or more."""
    for_models = int(fit * largest_mib * MIB)
    up.api.post(RUNTIMES, json=runtime("mm-iris-fill", for_models)).raise_for_status()
    names = [f"fill-{i}" for i in range(count)]
    create_services(up, "mm-iris-fill", names, 100)
    cold, failed = [], []
    for name in names:
        try:
            cold.append(predict(up, name))
        except RuntimeError as exc:  # a model measured bigger than the room: said, not timed
            failed.append(str(exc))
            log(f"{name}: {exc}")
            continue
        log(f"{name}: first request {cold[-1] * 1000:.0f} ms")
    time.sleep(1)  # the log lines of the last loads
    held = loads_before_first_eviction(home, set(names))
    return {"for_models": for_models, "cold": cold, "held": held, "failed": failed}


def run(services: int, measured: int, warm: int, fit: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="modelplane-bench-modelmesh-") as folder:
        home = Path(folder)
        build_models(home / "pvc" / "bench", 100 + services)
        up = Up(home)
        try:
            first = measure(up, home, measured, warm)
            size = statistics.median(size for size, _, _ in first["sizes"])
            largest = max(size for size, _, _ in first["sizes"])
            log(
                f"size per model, as the platform measured it: median {size * 1024:.0f}Ki, largest {largest * 1024:.0f}Ki"
            )
            second = fill(up, home, services, fit, largest)
        finally:
            up.stop()
    return {"measure": first, "fill": second, "size_mib": size, "largest_mib": largest}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def fit_room(results: dict) -> str:
    room = results["fill"]["for_models"]
    return f"{room / 1024:.0f}Ki, {room / (results['largest_mib'] * MIB):.0f} x the largest size measured"


def table(results: dict) -> str:
    first, second = results["measure"], results["fill"]
    cold = first["cold"][1:]  # the replica's first load is shown apart
    held = second["held"]
    room = REPLICA_MEMORY - DEFAULT_BUFFER
    after = second["cold"][held:] if held is not None else []
    sizes = first["sizes"]
    lines = [
        "| measurement | value |",
        "|---|---:|",
        f"| cold model, first request (loaded on demand), median ms | {ms(statistics.median(cold))} |",
        f"| cold model, first request, min / max ms | {ms(min(cold))} / {ms(max(cold))} |",
        f"| the replica's first model, ms | {ms(first['cold'][0])} |",
    ]
    if after:
        lines.append(
            f"| cold model once the replica is full (unloads the least recently used first), median ms | "
            f"{ms(statistics.median(after))} |"
        )
    lines += [
        f"| warm model, p50 ms | {first['warm_p50'] * 1000:.2f} |",
        f"| warm model, p90 ms | {first['warm_p90'] * 1000:.2f} |",
        f"| size per iris model as the platform accounts it (median), KiB | {results['size_mib'] * 1024:.0f} |",
        f"| ... of which files, KiB (median) | {statistics.median(f for _, f, _ in sizes) * 1024:.1f} |",
        f"| ... memory grown by its load, KiB (median) | {statistics.median(g for _, _, g in sizes) * 1024:.0f} |",
        f"| replica resident memory grown per model (models 2 to {len(first['cold'])}), KiB | "
        f"{first['per_model_rss'] / 1024:.0f} |",
        f"| replica resident memory: empty / one model / {len(first['cold'])} models, MiB | "
        f"{first['before'] / MIB:.0f} / {first['after_first'] / MIB:.0f} / {first['after_all'] / MIB:.0f} |",
        f"| models one replica held before eviction started (room for {fit_room(results)}) | "
        f"{held if held is not None else 'no eviction'} |",
        f"| ... at the default replica memory (2Gi less 128Mi): by the median size / by resident memory "
        f"per model | {int(room / (results['size_mib'] * MIB))} / {int(room / first['per_model_rss'])} |",
    ]
    if second["failed"]:
        lines.append(f"| models refused as bigger than the room | {len(second['failed'])} |")
    return "\n".join(lines)


def write_section(text: str, command: str, args: argparse.Namespace, load: float) -> None:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        "## ModelMesh\n\n"
        "Iris models (scikit-learn LogisticRegression) as ModelMesh InferenceServices on `modelplane up`, "
        "loaded on demand onto a runtime pool of one replica, V1 predictions through the gateway.\n"
        f"Produced by `{command}`.\n\n"
        f"Run {when} on {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average before the run {load:.2f}. {args.measure} services on a pool with the default "
        f"memory (cold first requests, then {args.warm} warm requests to one loaded model); then "
        f"{args.services} services on a pool whose replica keeps room for {args.fit} models by the "
        "largest size measured, each asked once in turn.\n\n"
        f"{text}\n\n"
        "- ModelMesh Serving publishes no figures to compare with; these are modelplane's own.\n"
        "- A cold request waits in the gateway while the model is placed, linked from its `pvc://` folder "
        "(no download) and loaded through the replica's repository API; a model's size is the larger of "
        "its files and what the replica's memory grew by during its load "
        "([docs/modelmesh.md](../docs/modelmesh.md)). An iris model is a few KiB of files, so the "
        "memory growth decides, and it is a noisy figure (the allocator may reuse freed pages).\n"
        "- The filled replica's room is 10 times the largest size measured; most models measure "
        "smaller, so more than 10 fit before the first eviction.\n"
        "- The counts at the default memory are what the accounting, or the resident memory, allows; "
        "they were not run with that many services (the store, the routes and the gateway's tables "
        "grow with them too).\n"
    )
    put_section("ModelMesh", section)


def main() -> int:
    parser = argparse.ArgumentParser(description="ModelMesh on modelplane up: cold and warm iris models")
    parser.add_argument("--measure", type=int, default=50, help="services on the default pool")
    parser.add_argument("--services", type=int, default=50, help="services on the filled pool")
    parser.add_argument("--fit", type=int, default=10, help="models the filled pool's replica has room for")
    parser.add_argument("--warm", type=int, default=300, help="warm requests")
    parser.add_argument(
        "--write-results", action="store_true", help='rewrite "## ModelMesh" in bench/RESULTS.md'
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = run(args.services, args.measure, args.warm, args.fit)
    text = table(results)
    print(text)
    if args.write_results:
        defaults = {"measure": 50, "services": 50, "fit": 10, "warm": 300}
        flags = "".join(
            f" --{key} {getattr(args, key)}" for key, value in defaults.items() if getattr(args, key) != value
        )
        write_section(text, f"python3 bench/modelmesh.py{flags} --write-results", args, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
