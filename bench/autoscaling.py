"""Autoscaling benchmark (issue 5): cold start from zero replicas, and how fast replicas follow a step in load.

Everything runs on one `modelplane up` that the script starts on ports the OS picks, with a temporary home of
its own and short autoscaling periods (`--scale-to-zero-grace-period 1s --autoscaler-tick 0.5s`, and the
annotation `autoscaling.knative.dev/window: "6s"` on each service, as tests/e2e/test_autoscaling.py does).

- cold start  `iris` (sklearn, an iris LogisticRegression trained here, `minReplicas: 0`). Each round waits
              until its status says zero (`actualReplicas == desiredReplicas == 0`) and no replica process is
              left, then times one V1 predict through the gateway, from send to response. The phases of that
              time come from the timestamps in the platform's log and the replica's log.
  bare        for context, in the same rounds (the order alternates): `modelplane serve` of the same model,
              from process start to its first successful V1 predict (tried every 50 ms).
- step        `slow` (a custom predictor that takes 0.2 s per request; `scaleTarget: 1`, `minReplicas: 1`,
              `maxReplicas: 4`). From idle, 4 client threads send requests back to back for `--step-seconds`;
              the status is polled every 0.1 s for when `desiredReplicas` and `actualReplicas` (ready) first
              reach 2, 3 and 4, then, once the load stops, for when both are back at 1.

    python3 bench/autoscaling.py                    # 5 rounds of each, prints the tables (about 5 min)
    python3 bench/autoscaling.py --write-results    # ... and rewrites "## Autoscaling" in bench/RESULTS.md

Every process the script starts is stopped at the end, also on Ctrl-C or an error. The logs of the last run are
copied to bench/.work/autoscaling/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from harness import free_port, log
from results_file import put_section

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
WORK = BENCH / ".work" / "autoscaling"
ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
IRIS_ANSWER = {"predictions": [1]}
UP_OPTIONS = ("--scale-to-zero-grace-period", "1s", "--autoscaler-tick", "0.5s", "--activator-timeout", "60s")
STATUS_POLL = 0.1  # seconds between two reads of a service's status
BARE_POLL = 0.05  # seconds between two predict attempts on the bare server
STEP_CLIENTS = 4
STEP_LEVELS = (2, 3, 4)
TARGET = 1.0  # issue 5: a cold start under 1 s

SLOW_MODEL = ROOT / "examples" / "slow-predictor" / "model.py"


def child_env() -> dict[str, str]:
    """The environment of every process started here: this checkout's modelplane first."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def build_models(pvc: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    (pvc / "bench" / "iris").mkdir(parents=True)
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    joblib.dump(model, pvc / "bench" / "iris" / "model.joblib")
    (pvc / "slow").mkdir()
    (pvc / "slow" / "model.py").write_text(SLOW_MODEL.read_text())


# ---- processes ----


def stop_group(process: subprocess.Popen, signum: int = signal.SIGTERM, timeout: float = 60) -> None:
    """Signals the process group of a child started with its own session; SIGKILL if it outlives `timeout`."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def processes(where: Callable[[int, str], bool]) -> list[int]:
    """Pids of the processes whose (parent pid, command line) satisfy `where`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if where(parent, cmdline):
            found.append(int(entry.name))
    return found


def kill_leftovers(home: Path) -> list[int]:
    """SIGKILL whatever still names the home folder (replicas that outlived `modelplane up`)."""
    pids = processes(lambda _parent, cmdline: str(home) in cmdline)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids


class Up:
    """`modelplane up` on OS-chosen ports in `home`, in a session of its own (Ctrl-C reaches the script,
    which stops it)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.log_path = home / "up.log"
        env = {**child_env(), "MODELPLANE_HOME": str(home)}
        for name in ("MODELPLANE_PVC_DIR", "MODELPLANE_CACHE_DIR", "MODELPLANE_API"):
            env.pop(name, None)
        command = [
            sys.executable, "-m", "modelplane", "up", "--api-port", "0", "--gateway-port", "0", *UP_OPTIONS,
        ]  # fmt: skip
        with self.log_path.open("ab") as up_log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=up_log, env=env, text=True, start_new_session=True
            )
        self.api: httpx.Client | None = None
        self.gateway_url = ""
        ready, _, _ = select.select([self.process.stdout], [], [], 120)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("modelplane is up: "):
            self.stop()
            raise RuntimeError(f"modelplane up did not start: {line!r}\n{self.log_tail()}")
        api, gateway = line.removeprefix("modelplane is up: ").strip().split(", ")
        self.api = httpx.Client(base_url=api.removeprefix("API "), timeout=30)
        self.gateway_url = gateway.removeprefix("gateway ")

    def stop(self) -> None:
        if self.api is not None:
            self.api.close()
        stop_group(self.process, timeout=120)
        self.process.stdout.close()

    def log_tail(self, size: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""

    def create(self, body: dict) -> None:
        self.api.post(ISVC_PATH, json=body).raise_for_status()

    def status(self, name: str) -> dict:
        response = self.api.get(f"{ISVC_PATH}/{name}")
        response.raise_for_status()
        return response.json().get("status") or {}

    def replicas(self, name: str) -> list[tuple[int, int]]:
        """(actual, desired) replicas of each running revision of `name`."""
        revisions = self.status(name).get("revisions") or []
        return [(r.get("actualReplicas", 0), r.get("desiredReplicas", 0)) for r in revisions]

    def replica_pids(self, marker: str) -> list[int]:
        """The replica processes (children of `modelplane up`) whose command line contains `marker`."""
        return processes(lambda parent, cmdline: parent == self.process.pid and marker in cmdline)

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.process.poll() is not None:
                raise RuntimeError(f"modelplane up exited with {self.process.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}\n{self.log_tail()}")
            time.sleep(STATUS_POLL)

    def ready(self, name: str) -> bool:
        conditions = self.status(name).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def isvc(name: str, predictor: dict, window: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": {"autoscaling.knative.dev/window": window}},
        "spec": {"predictor": predictor},
    }


# ---- the platform's log ----

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def log_events(path: Path, offset: int) -> list[tuple[float, str]]:
    """(wall-clock time, line) of the timestamped lines written to a log after `offset` bytes."""
    if not path.exists():
        return []
    with path.open("rb") as file:
        file.seek(offset)
        lines = file.read().decode(errors="replace").splitlines()
    events = []
    for line in lines:
        match = LOG_TIME.match(line)
        if match:
            stamp = datetime.datetime.strptime(
                match.group(1), "%Y-%m-%d %H:%M:%S,%f"
            )  # local time, as logged
            events.append((stamp.timestamp(), line))
    return events


def first(events: list[tuple[float, str]], text: str) -> float | None:
    return next((at for at, line in events if text in line), None)


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# ---- cold start ----

COLD_PHASES = (
    ("request -> scale-from-zero decision", "sent", "woken"),
    ("decision -> replica process started (storage initializer, spawn)", "woken", "spawned"),
    ("process started -> server listening (Python, modelplane imports)", "spawned", "listening"),
    ("server listening -> model loaded (scikit-learn import, joblib.load)", "listening", "loaded"),
    ("model loaded -> the platform's probe sees it ready", "loaded", "probed"),
    ("probed ready -> response (status, routes, the held request)", "probed", "answered"),
)


def cold_start(up: Up, model_dir: Path, revision: str) -> tuple[float, dict[str, float]]:
    """Seconds from sending a predict to the service at zero to its response, and the moments in between
    (wall clock, from the logs)."""
    replica_log = up.home / "logs" / "default" / "iris" / "predictor" / f"{revision}-0.log"
    up_offset, replica_offset = size(up.log_path), size(replica_log)
    with httpx.Client(timeout=120) as client:
        sent_at = time.time()
        started = time.perf_counter()
        response = client.post(
            f"{up.gateway_url}/v1/models/iris:predict", json=IRIS, headers={"host": "iris.default.localhost"}
        )
        elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.json() != IRIS_ANSWER:
        raise RuntimeError(f"unexpected cold-start answer: {response.status_code} {response.text}")
    time.sleep(0.3)  # let the log lines of the wake-up reach the files
    platform_log = log_events(up.log_path, up_offset)
    own_log = log_events(replica_log, replica_offset)
    moments = {
        "sent": sent_at,
        "woken": first(platform_log, "scale from zero"),
        "spawned": first(platform_log, f"of {revision} started"),
        "listening": first(own_log, "serving iris on"),
        "loaded": first(own_log, "model iris is ready"),
        "probed": first(platform_log, f"of {revision} is ready"),
        "answered": sent_at + elapsed,
    }
    return elapsed, {key: value for key, value in moments.items() if value is not None}


def bare_start(model_dir: Path, logs: Path) -> tuple[float, dict[str, float]]:
    """Seconds from starting `modelplane serve` to its first successful V1 predict, and the moments in
    between (wall clock, from its log)."""
    port = free_port()
    command = [
        sys.executable, "-m", "modelplane", "serve", f"--model-dir={model_dir}", "--model-name=iris",
        "--runtime=sklearn", f"--http-port={port}", f"--grpc-port={free_port()}",
    ]  # fmt: skip
    log_path = logs / "bare.log"
    offset = size(log_path)
    with log_path.open("ab") as output, httpx.Client(timeout=5) as client:
        spawned_at = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True
        )
        try:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    response = client.post(f"http://127.0.0.1:{port}/v1/models/iris:predict", json=IRIS)
                    if response.status_code == 200:
                        if response.json() != IRIS_ANSWER:
                            raise RuntimeError(f"unexpected answer from modelplane serve: {response.text}")
                        elapsed = time.perf_counter() - started
                        break
                if process.poll() is not None:
                    raise RuntimeError(f"modelplane serve exited with {process.returncode}")
                if time.perf_counter() - started > 120:
                    raise RuntimeError("modelplane serve did not answer within 120 s")
                time.sleep(BARE_POLL)
        finally:
            stop_group(process)
    own_log = log_events(log_path, offset)
    moments = {
        "spawned": spawned_at,
        "listening": first(own_log, "serving iris on"),
        "loaded": first(own_log, "model iris is ready"),
        "answered": spawned_at + elapsed,
    }
    return elapsed, {key: value for key, value in moments.items() if value is not None}


BARE_PHASES = (
    ("bare: process started -> server listening", "spawned", "listening"),
    ("bare: server listening -> model loaded", "listening", "loaded"),
    ("bare: model loaded -> first predict answered (50 ms polling)", "loaded", "answered"),
)
PLATFORM_PART = "the platform's own part: all but the replica's start -> model loaded"
REPLICA_PART = "the replica's own start: process started -> model loaded"
BARE_PART = "bare: process started -> model loaded"


@dataclass
class ColdResults:
    cold: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)
    to_zero: list[float] = field(default_factory=list)  # from the cold start's response to zero again


def record_phases(results: ColdResults, phases: tuple, moments: dict[str, float]) -> str:
    shown = []
    for label, start, end in phases:
        if start in moments and end in moments:
            results.phases.setdefault(label, []).append(moments[end] - moments[start])
            shown.append(f"{moments[end] - moments[start]:.2f}")
        else:
            shown.append("?")
    return " / ".join(shown)


def run_cold(up: Up, rounds: int, window: str) -> ColdResults:
    model_dir = up.home / "pvc" / "bench" / "iris"
    revision = "iris-predictor-00001"
    up.create(isvc("iris", {"minReplicas": 0, "sklearn": {"storageUri": "pvc://bench/iris"}}, window))
    up.wait_for(lambda: up.ready("iris"), "iris to be Ready")
    results = ColdResults()
    marker = f"--model-dir={model_dir}"

    def at_zero() -> bool:
        return up.replicas("iris") == [(0, 0)] and not up.replica_pids(marker)

    up.wait_for(at_zero, "iris at zero replicas")
    for index in range(rounds):
        # The bare server never runs next to an iris replica: the cold start waits for zero right after.
        order = ("cold", "bare") if index % 2 == 0 else ("bare", "cold")
        for what in order:
            if what == "bare":
                bare, moments = bare_start(model_dir, up.home)
                results.bare.append(bare)
                phases = record_phases(results, BARE_PHASES, moments)
                if "spawned" in moments and "loaded" in moments:
                    results.phases.setdefault(BARE_PART, []).append(moments["loaded"] - moments["spawned"])
                log(
                    f"cold round {index + 1}: bare modelplane serve, start -> first predict {bare:.2f}s ({phases})"
                )
                continue
            if not at_zero():
                raise RuntimeError(f"iris left zero by itself: {up.replicas('iris')}\n{up.log_tail()}")
            sent = time.perf_counter()
            elapsed, moments = cold_start(up, model_dir, revision)
            results.cold.append(elapsed)
            phases = record_phases(results, COLD_PHASES, moments)
            if "spawned" in moments and "loaded" in moments:
                replica = moments["loaded"] - moments["spawned"]
                results.phases.setdefault(REPLICA_PART, []).append(replica)
                results.phases.setdefault(PLATFORM_PART, []).append(elapsed - replica)
            up.wait_for(at_zero, "iris back at zero replicas")
            results.to_zero.append(time.perf_counter() - sent - elapsed)
            log(
                f"cold round {index + 1}: request at zero -> response {elapsed:.2f}s ({phases}); "
                f"back at zero {results.to_zero[-1]:.1f}s after the response"
            )
    return results


# ---- step response ----


class Load:
    """`clients` threads sending requests back to back until stopped. `start()` returns once every thread
    has its HTTP client and has been let go, so that the step starts at once."""

    def __init__(self, url: str, host: str, path: str, clients: int) -> None:
        self.answers: Counter[int] = Counter()
        self.replicas: Counter[int] = Counter()  # answers per replica pid
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ready = threading.Barrier(clients + 1, timeout=60)
        self._threads = [
            threading.Thread(target=self._run, args=(url, host, path), daemon=True) for _ in range(clients)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        self._ready.wait()

    def stop(self) -> None:
        self._stop.set()
        self._ready.abort()  # threads still waiting to start give up
        for thread in self._threads:
            if thread.is_alive():
                thread.join(130)

    def _run(self, url: str, host: str, path: str) -> None:
        with httpx.Client(base_url=url, headers={"host": host}, timeout=120) as client:
            try:
                self._ready.wait()
            except threading.BrokenBarrierError:
                return
            while not self._stop.is_set():
                try:
                    response = client.post(path, json=IRIS)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with self._lock:
                    self.answers[response.status_code] += 1
                    if response.status_code == 200:
                        self.replicas[response.json()["predictions"][0]] += 1
                    else:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")


STEP_ROWS = (
    *((f"desiredReplicas reaches {n}", f"desired>={n}") for n in STEP_LEVELS),
    *((f"actualReplicas (ready) reaches {n}", f"actual>={n}") for n in STEP_LEVELS),
    ("after the load stops: desiredReplicas back at 1", "desired==1"),
    ("after the load stops: actualReplicas back at 1", "actual==1"),
    ("after the load stops: one replica process left", "processes==1"),
)


@dataclass
class StepResults:
    times: dict[str, list[float | None]] = field(default_factory=dict)
    requests: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    replicas_answering: list[int] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)  # the autoscaler's decisions in the first round
    replica_starts: list[float] = field(default_factory=list)  # process start -> ready, every new replica


def step_round(
    up: Up, seconds: float, marker: str
) -> tuple[dict[str, float | None], Load, list[str], list[float]]:
    times: dict[str, float | None] = {key: None for _, key in STEP_ROWS}
    offset = size(up.log_path)
    load = Load(up.gateway_url, "slow.default.localhost", "/v1/models/slow:predict", STEP_CLIENTS)
    try:
        load.start()
        started_at = time.time()
        started = time.perf_counter()
        while (now := time.perf_counter()) - started < seconds:
            for actual, desired in up.replicas("slow"):
                for n in STEP_LEVELS:
                    for key, value in ((f"desired>={n}", desired), (f"actual>={n}", actual)):
                        if value >= n and times[key] is None:
                            times[key] = now - started
            time.sleep(STATUS_POLL)
    finally:
        load.stop()
    stopped = time.perf_counter()  # every client has its last answer
    deadline = stopped + 120
    while any(times[key] is None for key in ("desired==1", "actual==1", "processes==1")):
        now = time.perf_counter()
        if now > deadline:
            raise RuntimeError(f"slow did not come back to 1 replica within 120 s\n{up.log_tail()}")
        replicas = up.replicas("slow")
        pids = up.replica_pids(marker)
        for key, done in (
            ("desired==1", replicas and all(desired == 1 for _, desired in replicas)),
            ("actual==1", replicas and all(actual == 1 for actual, _ in replicas)),
            ("processes==1", len(pids) == 1),
        ):
            if done and times[key] is None:
                times[key] = now - stopped
        time.sleep(STATUS_POLL)
    events = log_events(up.log_path, offset)
    decisions = [
        f"{at - started_at:+6.2f}s  {line.split(': ', 1)[1]}"
        for at, line in events
        if "modelplane.control.autoscaler" in line
    ]
    spawned = {}
    starts = []  # seconds from a new replica's process start to the probe that found it ready
    for at, line in events:
        if match := REPLICA_EVENT.search(line):
            index, what = match.groups()
            if what == "started":
                spawned[index] = at
            elif index in spawned:
                starts.append(at - spawned.pop(index))
    return times, load, decisions, starts


REPLICA_EVENT = re.compile(r"replica (\d+) of slow-predictor-\d+ (started|is ready)")


def run_step(up: Up, rounds: int, window: str, seconds: float, idle: float) -> StepResults:
    marker = str(up.home / "pvc" / "slow" / "model.py")
    slow = {
        "minReplicas": 1,
        "maxReplicas": 4,
        "scaleTarget": 1,
        "containers": [
            {
                "name": "kserve-container",
                "image": "slow:latest",
                "command": ["python", "/mnt/models/model.py"],
                "env": [{"name": "STORAGE_URI", "value": "pvc://slow"}],
            }
        ],
    }
    up.create(isvc("slow", slow, window))
    up.wait_for(lambda: up.ready("slow"), "slow to be Ready")
    results = StepResults()
    for index in range(rounds):
        up.wait_for(
            lambda: up.replicas("slow") == [(1, 1)] and len(up.replica_pids(marker)) == 1, "slow at 1 replica"
        )
        time.sleep(idle)  # idle: the windows have seen no request for a while
        if up.replicas("slow") != [(1, 1)]:
            raise RuntimeError(f"slow left 1 replica while idle: {up.replicas('slow')}\n{up.log_tail()}")
        times, load, decisions, starts = step_round(up, seconds, marker)
        results.replica_starts += starts
        for key, value in times.items():
            results.times.setdefault(key, []).append(value)
        results.requests.append(sum(load.answers.values()))
        results.failures += load.failures
        results.replicas_answering.append(len(load.replicas))
        if index == 0:
            results.decisions = decisions
        shown = ", ".join(
            f"{key} {'-' if value is None else f'{value:.2f}s'}" for key, value in times.items()
        )
        log(
            f"step round {index + 1}: {shown}; {sum(load.answers.values())} requests, "
            f"{len(load.failures)} failed, {len(load.replicas)} replicas answered"
        )
        for line in decisions:
            log(f"    {line}")
    return results


# ---- report ----


def seconds_row(label: str, values: list[float | None], rounds: int) -> str:
    measured = [value for value in values if value is not None]
    if not measured:
        return f"| {label} | not reached | | | 0/{rounds} |"
    return (
        f"| {label} | {statistics.median(measured):.2f} | {min(measured):.2f} | {max(measured):.2f} "
        f"| {len(measured)}/{rounds} |"
    )


def tables(cold: ColdResults, step: StepResults, rounds: int, step_seconds: float) -> str:
    median_cold = statistics.median(cold.cold)
    median_bare = statistics.median(cold.bare)
    lines = [
        "Cold start (sklearn iris, `minReplicas: 0`), seconds:",
        "",
        "| measurement | median | min | max | rounds |",
        "|---|---:|---:|---:|---:|",
        seconds_row("**request at zero replicas -> response, through the gateway**", cold.cold, rounds),
        seconds_row("bare `modelplane serve`: process start -> first predict", cold.bare, rounds),
        "",
        f"Target under {TARGET:g} s: **{'met' if median_cold < TARGET else 'not met'}** "
        f"(median {median_cold:.2f} s; {median_cold / median_bare:.2f}x the bare start).",
        "",
        "Where the cold start goes (from the timestamps of the platform's and the replica's logs, ms resolution):",
        "",
        "| phase | median | min | max | rounds |",
        "|---|---:|---:|---:|---:|",
        *(seconds_row(label, cold.phases.get(label, []), rounds) for label, _, _ in COLD_PHASES),
        seconds_row(REPLICA_PART, cold.phases.get(REPLICA_PART, []), rounds),
        seconds_row(PLATFORM_PART, cold.phases.get(PLATFORM_PART, []), rounds),
        *(seconds_row(label, cold.phases.get(label, []), rounds) for label, _, _ in BARE_PHASES),
        seconds_row(BARE_PART, cold.phases.get(BARE_PART, []), rounds),
        seconds_row(
            "(between rounds) response -> back at zero (status 0/0, no replica process)",
            cold.to_zero,
            rounds,
        ),
        "",
        f"Step response (`slow`: 0.2 s per request, `scaleTarget: 1`, replicas 1..4; {STEP_CLIENTS} clients "
        f"back to back for {step_seconds:g} s), seconds from the step's start (scale-up) or from the end of "
        "the load (scale-down):",
        "",
        "| event | median | min | max | rounds |",
        "|---|---:|---:|---:|---:|",
        *(seconds_row(label, step.times.get(key, []), rounds) for label, key in STEP_ROWS),
        seconds_row(
            "a new replica: process started -> probed ready (from the log; count = replicas)",
            step.replica_starts,
            len(step.replica_starts),
        ),
        "",
        f"Requests served per step: median {statistics.median(step.requests):.0f} "
        f"(all {STEP_CLIENTS} replicas busy would be {STEP_CLIENTS * step_seconds / 0.2:.0f}); "
        f"failed requests: {len(step.failures)}; replicas that answered per step: "
        f"{', '.join(str(n) for n in step.replicas_answering)}.",
    ]
    return "\n".join(lines)


def write_section(
    text: str, command: str, rounds: int, loads: tuple[float, float], cold: ColdResults, step: StepResults
) -> None:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    decisions = "\n".join(f"    {line}" for line in step.decisions[:12])

    def median(label: str) -> str:
        values = cold.phases.get(label)
        return f"{statistics.median(values):.2f} s" if values else "?"

    slow_start = ""
    if statistics.median(cold.cold) >= TARGET:
        slow_start = (
            " Under 1 s needs a replica that does not start Python and import scikit-learn on the "
            "request's path."
        )
    section = (
        "## Autoscaling\n\n"
        "Cold start (the first request to a revision at zero replicas, until its response; target under 1 s) "
        "and how fast the replica count follows a step in load, on `modelplane up`.\n"
        f"Produced by `{command}`.\n\n"
        f"Run {when} on {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {loads[0]:.2f} before the run and {loads[1]:.2f} after it. {rounds} rounds of each "
        "part; cold and bare runs alternating. `modelplane up --scale-to-zero-grace-period 1s "
        '--autoscaler-tick 0.5s`, each service annotated `autoscaling.knative.dev/window: "6s"` '
        "(panic window 0.6 s), status polled every 0.1 s through the control-plane API.\n\n"
        f"{text}\n\n"
        "The autoscaler's decisions in the first step, from the `modelplane up` log (seconds from the step's "
        "start):\n\n"
        f"{decisions}\n\n"
        "- Noise: the 2 cores are shared with other engineers' work (see the load average), and the platform, "
        "the replicas and the clients here compete for them too; single rounds vary by 2x or more, most of "
        "all in the model load. Medians of the rounds, with the range.\n"
        f"- The cold start is the replica starting from nothing: of the median {median(REPLICA_PART)} "
        "from its process start to its model loaded, nearly all is Python importing modelplane and "
        f"scikit-learn; the bare server takes {median(BARE_PART)} for the same. The platform's own part "
        f"(wake-up, storage initializer, spawn, readiness probe every 0.2 s while loading, routes) is "
        f"{median(PLATFORM_PART)}.{slow_start}\n"
        "- Back at zero: an idle revision keeps its replica for the 6 s window after its last request, then "
        "the 1 s grace period, then the next tick decides; the last row of the cold-start table adds the "
        "replica process's exit to that.\n"
        "- Step times are quantised by the 0.5 s autoscaler tick and the 0.1 s status poll; actualReplicas "
        "counts replicas that answered their readiness probe, so it trails desiredReplicas by a replica's "
        "start-up (the last row of the step table).\n"
    )
    put_section("Autoscaling", section)


def keep_logs(home: Path) -> None:
    """The logs of the last run, for a look afterwards."""
    with contextlib.suppress(OSError):
        shutil.rmtree(WORK, ignore_errors=True)
        WORK.mkdir(parents=True)
        for name in ("up.log", "bare.log"):
            if (home / name).exists():
                shutil.copy(home / name, WORK / name)
        if (home / "logs").exists():
            shutil.copytree(home / "logs", WORK / "replicas")


def raise_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Autoscaling on modelplane up: cold start from zero replicas, and the replica count "
        "following a step in load (issue 5).",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each part (default 5)")
    parser.add_argument(
        "--step-seconds", type=float, default=12.0, help="how long each step of load lasts (default 12)"
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=7.0,
        help="idle time before each step, once at 1 replica (default 7: more than the 6 s window)",
    )
    parser.add_argument(
        "--write-results", action="store_true", help='rewrite "## Autoscaling" in bench/RESULTS.md'
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    window = "6s"
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelplane-bench-autoscale-") as folder:
        home = Path(folder)
        up: Up | None = None
        try:
            build_models(home / "pvc")
            up = Up(home)
            log(f"modelplane up: API {up.api.base_url}, gateway {up.gateway_url}, home {home}")
            cold = run_cold(up, args.rounds, window)
            step = run_step(up, args.rounds, window, args.step_seconds, args.idle_seconds)
        except (KeyboardInterrupt, SystemExit):
            log("interrupted: stopping modelplane up and every process it started")
            raise
        finally:
            if up is not None:
                up.stop()
            leftovers = kill_leftovers(home)
            if leftovers:
                log(f"warning: processes outlived modelplane up and were killed: {leftovers}")
            keep_logs(home)
    load_after = os.getloadavg()[0]
    text = tables(cold, step, args.rounds, args.step_seconds)
    print(text)
    print(
        f"\nload average {load_before:.2f} before, {load_after:.2f} after; {time.monotonic() - started:.0f} s"
    )
    if args.write_results:
        command = " ".join(["python3", "bench/autoscaling.py", *sys.argv[1:]])
        write_section(text, command, args.rounds, (load_before, load_after), cold, step)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
