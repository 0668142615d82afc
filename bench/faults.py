"""Faults injected into a running `modelplane up` with load on it: requests failed and time to recover.

Each fault runs on a platform of its own (a fresh home, OS-chosen ports) with an sklearn iris service,
and `CLIENTS` clients sending V1 predictions through the gateway one after another:

- replica      the service's replica gets SIGKILL. Failed: the requests that did not get a 200.
               Recovered: the first 200 to a request sent after the kill (the supervisor restarted it).
- up           `modelplane up` gets SIGKILL; once every process it started is gone (counted: what is left),
               it is started again on the same home and ports, without a new apply. Recovered: the first
               200 after the kill. Failures are split: refused while nothing listened, 503 "starting",
               404 (must be none).
- disk         a second service is applied whose model (a 3 MB archive over HTTP) must be fetched into a
               cache on a real 8 MiB tmpfs, 6 MiB of which a ballast file fills (the platform runs in a user
               and mount namespace of its own: `unshare`, no root). Timed: apply -> its status shows the
               storage initializer's failure; then the ballast is removed: -> its first 200. The load runs
               on the first service meanwhile. Half-written files: what the cache's staging folder holds.
- store        another process holds a write lock on the store (an open transaction) for `LOCK_SECONDS`; an
               apply meanwhile must fail with one line. Recovered: the first apply after the release. The
               load runs through the gateway meanwhile.
- history      20,000 writes to a store: the events kept and the file's size after 10,000 and after
               20,000; a watch from resourceVersion 1 afterwards (410 Expired).

    python3 bench/faults.py                   # prints the table
    python3 bench/faults.py --write-results   # ... and rewrites the "## Faults" section of bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml
from harness import free_port, log
from results_file import put_section

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
CLIENTS = 4
LOCK_SECONDS = 10.0
HISTORY_WRITES = 20_000


def build_model(folder: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    features, labels = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), folder / "model.joblib")


def service(name: str, storage_uri: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"sklearn": {"storageUri": storage_uri}}},
    }


class Up:
    """`modelplane up` in a home of its own; `wrapper` runs it inside another command (`unshare ...`)."""

    def __init__(
        self, home: Path, wrapper: list[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.home = home
        self.wrapper = wrapper or []
        self.api_port, self.gateway_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None
        self.env = {**os.environ, "MODELPLANE_HOME": str(home), "PYTHONPATH": str(ROOT)}
        self.env["MODELPLANE_API"] = f"http://127.0.0.1:{self.api_port}"
        for name in ("MODELPLANE_PVC_DIR", "MODELPLANE_CACHE_DIR"):
            self.env.pop(name, None)
        self.env.update(env or {})

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(self) -> float:
        """Starts it; returns when it started (before it listens)."""
        command = [sys.executable, "-m", "modelplane", "up"]
        command += ["--api-port", str(self.api_port), "--gateway-port", str(self.gateway_port)]
        started = time.monotonic()
        with (self.home / "up.log").open("ab") as out:
            self.process = subprocess.Popen(
                self.wrapper + command, stdout=subprocess.PIPE, stderr=out, env=self.env, text=True
            )
        line = self.process.stdout.readline()
        if not line.startswith("modelplane is up"):
            raise RuntimeError(f"modelplane up did not start: {line!r}; see {self.home / 'up.log'}")
        return started

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "modelplane", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
        )

    def apply(self, resource: dict) -> subprocess.CompletedProcess:
        path = self.home / f"{resource['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(resource))
        return self.cli("apply", "-f", str(path))

    def wait_ready(self, name: str) -> None:
        result = self.cli("wait", "--for=condition=Ready", f"isvc/{name}", "--timeout=300s")
        if result.returncode != 0:
            raise RuntimeError(result.stderr)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Load:
    """`CLIENTS` clients posting predictions for one service through the gateway until stopped."""

    def __init__(self, gateway: str, name: str) -> None:
        self.gateway, self.host = gateway, f"{name}.default.localhost"
        self.outcomes: list[tuple[float, float, int | str]] = []  # (sent, answered, status or error)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(300)

    def _client(self) -> None:
        path = f"/v1/models/{self.host.split('.')[0]}:predict"
        with httpx.Client(base_url=self.gateway, headers={"host": self.host}, timeout=300) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(path, json=IRIS)
                    outcome: int | str = response.status_code
                    if outcome == 503 and "is starting" in response.text:
                        outcome = "503 starting"
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                    time.sleep(0.05)  # nothing listens: do not spin
                with self._lock:
                    self.outcomes.append((sent, time.monotonic(), outcome))

    def first_success_after(self, moment: float, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                answered = [
                    done for sent, done, outcome in self.outcomes if sent >= moment and outcome == 200
                ]
            if answered:
                return min(answered)
            time.sleep(0.01)
        raise RuntimeError("no request succeeded")

    def failures(self) -> Counter:
        with self._lock:
            return Counter(outcome for _, _, outcome in self.outcomes if outcome != 200)

    def served(self) -> int:
        with self._lock:
            return sum(1 for _, _, outcome in self.outcomes if outcome == 200)


def processes_under(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if entry.name.isdigit():
                children.setdefault(
                    int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]), []
                ).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def replica_of(home: Path, model: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and alive(int(entry.name)):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if str(home / "pvc" / model) in cmdline:
                    found.append(int(entry.name))
    return found


@contextlib.contextmanager
def platform_with_iris(wrapper: list[str] | None = None, env: dict[str, str] | None = None) -> Iterator[Up]:
    with tempfile.TemporaryDirectory(prefix="modelplane-faults-") as folder:
        home = Path(folder) / "home"
        home.mkdir()
        build_model(home / "pvc" / "bench" / "iris")
        up = Up(home, wrapper, env)
        up.start()
        try:
            result = up.apply(service("iris", "pvc://bench/iris"))
            if result.returncode != 0:
                raise RuntimeError(result.stderr)
            up.wait_ready("iris")
            yield up
        finally:
            up.stop()
            for pid in replica_of(home, "bench"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def warm_up(load: Load) -> None:
    deadline = time.monotonic() + 120
    while load.served() < 50 and time.monotonic() < deadline:
        time.sleep(0.05)


def replica_killed() -> dict:
    with platform_with_iris() as up, Load(up.gateway, "iris") as load:
        warm_up(load)
        [pid] = replica_of(up.home, "bench")
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        recovered = load.first_success_after(killed)
        time.sleep(1.0)
    return {
        "fault": "a replica killed (SIGKILL) under load",
        "failed": dict(load.failures()),
        "served": load.served(),
        "recover": recovered - killed,
        "recover_what": "kill -> first 200 of a request sent after it",
        "note": f"{CLIENTS} clients; requests that came meanwhile waited in the gateway",
    }


def up_killed() -> dict:
    with platform_with_iris() as up, Load(up.gateway, "iris") as load:
        warm_up(load)
        family = processes_under(up.process.pid)
        killed = time.monotonic()
        up.process.kill()
        up.process.wait()
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in family if alive(pid)]
        all_gone = time.monotonic() - killed
        up.start()
        recovered = load.first_success_after(killed)
        time.sleep(1.0)
        replicas = len(replica_of(up.home, "bench"))
    failures = load.failures()
    return {
        "fault": "`modelplane up` killed (SIGKILL) under load, then started again without apply",
        "failed": dict(failures),
        "served": load.served(),
        "recover": recovered - killed,
        "recover_what": "kill -> first 200 (the restart is started once every process is gone)",
        "note": (
            f"{len(family)} processes under `up` gone {all_gone:.2f} s after the kill, {len(left)} left; "
            f"{replicas} replica after the restart; {failures.get(404, 0)} answered 404"
        ),
    }


def model_archive(folder: Path) -> Path:
    """The iris model and 3 MB of incompressible padding, as one .tar.gz."""
    build_model(folder / "model")
    (folder / "model" / "padding.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    archive = folder / "www" / "big-iris.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for path in (folder / "model").iterdir():
            tar.add(path, arcname=path.name)
    return archive


def disk_full() -> dict:
    with tempfile.TemporaryDirectory(prefix="modelplane-faults-www-") as www_folder:
        archive = model_archive(Path(www_folder))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=archive.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        trigger = Path(www_folder) / "free-the-disk"
        cache = "/tmp/modelplane-faults-cache"
        # In the namespace: an 8 MiB tmpfs as the model cache, 6 MiB of it taken by a ballast file that
        # goes once `trigger` exists; then `modelplane up`.
        script = (
            f"mkdir -p {cache} && mount -t tmpfs -o size=8m faults {cache} && "
            f"head -c 6291456 /dev/zero > {cache}/ballast && "
            f'(while [ ! -e {trigger} ]; do sleep 0.05; done; rm {cache}/ballast) & exec "$@"'
        )
        wrapper = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
        try:
            with (
                platform_with_iris(wrapper, {"MODELPLANE_CACHE_DIR": cache}) as up,
                Load(up.gateway, "iris") as load,
            ):
                warm_up(load)
                applied = time.monotonic()
                result = up.apply(service("big-iris", f"http://127.0.0.1:{port}/big-iris.tar.gz"))
                if result.returncode != 0:
                    raise RuntimeError(result.stderr)
                message = wait_for_storage_failure(up)
                failed_at = time.monotonic()
                staging = Path(f"/proc/{up.process.pid}/root{cache}")
                left = sorted(
                    str(p.relative_to(staging))
                    for p in staging.rglob("*")
                    if p.is_file() and p.name != "ballast" and ".locks" not in p.parts
                )
                freed = time.monotonic()
                trigger.touch()
                up.wait_ready("big-iris")
                ready = time.monotonic() - freed
                response = httpx.post(
                    f"{up.gateway}/v1/models/big-iris:predict",
                    json=IRIS,
                    headers={"host": "big-iris.default.localhost"},
                )
        finally:
            server.terminate()
            server.wait()
    return {
        "fault": "the disk full during a model fetch (3 MB archive, 2 MiB free on a real tmpfs)",
        "failed": dict(load.failures()),
        "served": load.served(),
        "recover": ready,
        "recover_what": "space freed -> the service Ready (retried with back-off)",
        "note": (
            f"apply -> status shows the failure: {failed_at - applied:.2f} s; status message: `{message}`; "
            f"files left half-written: {len(left)}; after: {response.status_code}"
        ),
    }


def wait_for_storage_failure(up: Up, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = up.cli("get", "isvc", "big-iris", "-o", "yaml")
        status = (yaml.safe_load(result.stdout) or {}).get("status") or {}
        failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
        if failure.get("location") == "storage-initializer" or "no space" in str(failure.get("message")):
            return failure["message"]
        time.sleep(0.05)
    raise RuntimeError(f"no storage failure in the status: {status}")


def store_locked() -> dict:
    with platform_with_iris() as up, Load(up.gateway, "iris") as load:
        warm_up(load)
        served_before = load.served()
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys\n"
                f"db = sqlite3.connect({str(up.home / 'store.db')!r}, isolation_level=None)\n"
                "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.readline()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holder.stdout.readline()
        locked = time.monotonic()
        labelled = service("iris", "pvc://bench/iris")
        labelled["metadata"]["labels"] = {"faults": "store-locked"}
        during = up.apply(labelled)
        time.sleep(max(0.0, LOCK_SECONDS - (time.monotonic() - locked)))
        served_during = load.served() - served_before
        holder.communicate("release\n")
        released = time.monotonic()
        while up.apply(labelled).returncode != 0:
            time.sleep(0.05)
        recovered = time.monotonic() - released
    return {
        "fault": f"the store's file locked by another process for {LOCK_SECONDS:g} s",
        "failed": dict(load.failures()),
        "served": load.served(),
        "recover": recovered,
        "recover_what": "lock released -> an apply succeeds",
        "note": (
            f"{served_during} predictions served while locked; an apply meanwhile: exit {during.returncode}, "
            f"`{during.stderr.strip()}`"
        ),
    }


def history() -> dict:
    sys.path.insert(0, str(ROOT))
    from modelplane.local.api.errors import Expired
    from modelplane.local.api.store import Ref, Store

    with tempfile.TemporaryDirectory(prefix="modelplane-faults-store-") as folder:
        path = Path(folder) / "store.db"
        store = Store(path)
        store.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"}})
        ref = Ref("Event", "default", "e")
        sizes = {}
        started = time.monotonic()
        for write in range(1, HISTORY_WRITES + 1):
            store.update(ref, lambda current, n=write: {**current, "message": f"{n} " + "x" * 200})
            if write in (HISTORY_WRITES // 2, HISTORY_WRITES):
                kept = store._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                size = sum(f.stat().st_size for f in Path(folder).iterdir())
                sizes[write] = (kept, size)
        seconds = time.monotonic() - started
        try:
            store.events_after(1)
            expired = "no"
        except Expired as exc:
            expired = f"410 Expired ({exc})"
        store.close()
    (half_kept, half_size), (kept, size) = sizes[HISTORY_WRITES // 2], sizes[HISTORY_WRITES]
    return {
        "fault": f"{HISTORY_WRITES:,} writes to the store (the history of events)",
        "failed": {},
        "served": HISTORY_WRITES,
        "recover": None,
        "recover_what": "",
        "note": (
            f"events kept after {HISTORY_WRITES // 2:,} writes: {half_kept:,}, files {half_size / 1e6:.1f} MB; "
            f"after {HISTORY_WRITES:,}: {kept:,}, {size / 1e6:.1f} MB; a watch from resourceVersion 1: {expired}; "
            f"{seconds / HISTORY_WRITES * 1000:.2f} ms a write"
        ),
    }


FAULTS = {
    "replica": replica_killed,
    "up": up_killed,
    "disk": disk_full,
    "store": store_locked,
    "history": history,
}


def table(rows: list[dict]) -> str:
    lines = [
        "| fault | requests served | requests failed | time to recover | what was timed, and what else was seen |",
        "|---|---:|---|---:|---|",
    ]
    for row in rows:
        failed = (
            ", ".join(f"{count} × {what}" for what, count in sorted(row["failed"].items(), key=str)) or "0"
        )
        recover = f"{row['recover']:.2f} s" if row["recover"] is not None else "-"
        what = "; ".join(part for part in (row["recover_what"], row["note"]) if part)
        lines.append(f"| {row['fault']} | {row['served']} | {failed} | {recover} | {what} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("faults", nargs="*", help=f"the faults to inject: {', '.join(FAULTS)} (default: all)")
    args = parser.parse_args()
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"no fault named {', '.join(sorted(unknown))}")
    load_before = os.getloadavg()[0]
    rows = []
    for name in args.faults or FAULTS:
        log(f"fault: {name}")
        rows.append(FAULTS[name]())
        log(str(rows[-1]))
    text = table(rows)
    print(text)
    if args.write_results:
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        put_section(
            "Faults",
            "## Faults\n\n"
            "Faults injected into a running `modelplane up` with load on it "
            f"({CLIENTS} clients posting V1 predictions through the gateway one after another).\n"
            "Produced by `python3 bench/faults.py --write-results`.\n\n"
            f"Run {when} on {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average before the run {load_before:.2f}.\n\n"
            f"{text}\n\n"
            "- A failed request is one that did not get a 200: a status code, or the client's transport error "
            "(`ConnectError`: nothing listened).\n"
            "- The disk is a real tmpfs in a user and mount namespace of the platform's own (`unshare "
            "--user --map-root-user --mount`), not a hook in the fetch.\n",
        )


if __name__ == "__main__":
    main()
