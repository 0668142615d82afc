"""Platform benchmark (issue 4): the time from `apply` to Ready for an sklearn model.

Each round, in alternating order:

- platform   an InferenceService (`sklearn`, `storageUri: pvc://bench/iris`) is created through the
             control-plane API of a running `modelplane up`; timed until its status says Ready=True for that
             generation (polled every 50 ms), and until the first V1 prediction through the gateway
             succeeds. Then it is deleted.
- bare       the same model started by hand, `modelplane serve --model-dir ... --runtime sklearn`, timed
             until `GET /v2/health/ready` answers 200 (probed every 0.2 s, as the platform probes a loading
             replica): what a replica costs by itself.

The difference is what the platform adds (reconcile, storage initializer, process start, probing, routes,
status). The model is an iris LogisticRegression trained here.

    python3 bench/platform_startup.py                   # 5 rounds, prints the table
    python3 bench/platform_startup.py --write-results   # ... and rewrites the "## Platform" section of bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from harness import free_port, log
from results_file import put_section

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
# The bare server is probed as the platform's supervisor probes a loading replica; the status is polled
# more often, so that polling adds little to the platform's figure.
PROBE_INTERVAL = 0.2
STATUS_POLL_INTERVAL = 0.05


def build_model(folder: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    features, labels = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), folder / "model.joblib")


class Up:
    """`modelplane up` on OS-chosen ports in a home of its own."""

    def __init__(self, home: Path) -> None:
        env = {**os.environ, "MODELPLANE_HOME": str(home)}
        command = [sys.executable, "-m", "modelplane", "up", "--api-port", "0", "--gateway-port", "0"]
        self.log = (home / "up.log").open("ab")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, env=env, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("modelplane is up: "):
            self.stop()
            raise RuntimeError(f"modelplane up did not start: {line!r}")
        api, gateway = line.removeprefix("modelplane is up: ").strip().split(", ")
        self.api = httpx.Client(base_url=api.removeprefix("API "), timeout=30)
        self.gateway = httpx.Client(base_url=gateway.removeprefix("gateway "), timeout=120)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(120)
        self.log.close()


def time_platform(up: Up, name: str) -> tuple[float, float]:
    """Seconds from the create request to Ready, and to the first prediction through the gateway."""
    body = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"sklearn": {"storageUri": "pvc://bench/iris"}}},
    }
    started = time.perf_counter()
    created = up.api.post(ISVC_PATH, json=body)
    created.raise_for_status()
    generation = created.json()["metadata"]["generation"]
    while True:
        status = up.api.get(f"{ISVC_PATH}/{name}").json().get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        if ready and status.get("observedGeneration") == generation:
            break
        time.sleep(STATUS_POLL_INTERVAL)
    ready_after = time.perf_counter() - started
    response = up.gateway.post(
        f"/v1/models/{name}:predict", json=IRIS, headers={"host": f"{name}.default.localhost"}
    )
    if response.status_code != 200 or response.json() != {"predictions": [1]}:
        raise RuntimeError(f"unexpected answer through the gateway: {response.status_code} {response.text}")
    predicted_after = time.perf_counter() - started
    up.api.delete(f"{ISVC_PATH}/{name}").raise_for_status()
    return ready_after, predicted_after


def time_bare(model_dir: Path, work: Path) -> float:
    """Seconds from starting `modelplane serve` to its readiness endpoint answering 200."""
    port = free_port()
    command = [
        sys.executable, "-m", "modelplane", "serve", "--model-dir", str(model_dir), "--model-name", "iris",
        "--runtime", "sklearn", "--http-port", str(port), "--grpc-port", str(free_port()),
    ]  # fmt: skip
    with (work / "bare.log").open("ab") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(timeout=1) as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError(f"modelplane serve exited with {process.returncode}")
                time.sleep(PROBE_INTERVAL)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def run(rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"ready": [], "predicted": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="modelplane-bench-platform-") as folder:
        home = Path(folder)
        build_model(home / "pvc" / "bench" / "iris")
        up = Up(home)
        try:
            for index in range(rounds):
                order = ("platform", "bare") if index % 2 == 0 else ("bare", "platform")
                for what in order:
                    if what == "platform":
                        ready, predicted = time_platform(up, f"iris-{index}")
                        results["ready"].append(ready)
                        results["predicted"].append(predicted)
                        log(
                            f"round {index + 1}: apply -> Ready {ready:.2f}s, -> first prediction {predicted:.2f}s"
                        )
                    else:
                        bare = time_bare(home / "pvc" / "bench" / "iris", home)
                        results["bare"].append(bare)
                        log(f"round {index + 1}: modelplane serve -> ready {bare:.2f}s")
                    time.sleep(2)  # let the deleted service's replica stop before the next measurement
        finally:
            up.stop()
    return results


def table(results: dict[str, list[float]]) -> str:
    bare = statistics.median(results["bare"])
    rows = [
        ("`modelplane serve` by hand: start -> ready (bare)", results["bare"]),
        ("`modelplane up`: apply -> Ready", results["ready"]),
        ("`modelplane up`: apply -> first prediction through the gateway", results["predicted"]),
    ]
    lines = ["| measurement | median s | min s | max s | vs bare |", "|---|---:|---:|---:|---:|"]
    for label, values in rows:
        median = statistics.median(values)
        lines.append(
            f"| {label} | {median:.2f} | {min(values):.2f} | {max(values):.2f} | {median / bare:.2f}x |"
        )
    return "\n".join(lines)


def write_section(text: str, command: str, rounds: int, load: float) -> None:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        "## Platform\n\n"
        "The time from `apply` to Ready for an sklearn model on `modelplane up`, next to the time the same "
        "model takes to start in a bare `modelplane serve`.\n"
        f"Produced by `{command}`.\n\n"
        f"Run {when} on {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average before the run {load:.2f}. {rounds} rounds, platform and bare runs alternating, "
        "Ready polled every 50 ms through the control-plane API; the bare server probed every 0.2 s, as the platform probes a loading replica.\n\n"
        f"{text}\n\n"
        "- The platform's part is the difference between the rows: the watch, the reconcile, the storage "
        "initializer (a local pvc folder here, so no download), the process start of the replica, its "
        "readiness probes (every 0.2 s while loading), routes and the status write.\n"
        "- Most of either figure is Python starting and importing scikit-learn on a loaded 2-core machine.\n"
    )
    put_section("Platform", section)


def main() -> int:
    parser = argparse.ArgumentParser(description="apply -> Ready time of modelplane up for an sklearn model")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--write-results", action="store_true", help='rewrite "## Platform" in bench/RESULTS.md'
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = run(args.rounds)
    text = table(results)
    print(text)
    if args.write_results:
        command = "python3 bench/platform_startup.py" + (
            f" --rounds {args.rounds}" if args.rounds != 5 else ""
        )
        write_section(text, command + " --write-results", args.rounds, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
