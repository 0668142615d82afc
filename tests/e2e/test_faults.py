"""Faults, end to end: a replica killed under load, `modelplane up` killed with SIGKILL and started
again, the store's file locked by another process, damaged, or one record in it damaged. (A disk that fills up during a fetch:
tests/storage/test_disk_full.py; the store's compacted history: tests/local/api/test_store.py.)"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from modelplane.local.api.server import open_store
from tests.e2e.platform_process import (
    PlatformProcess,
    kill_leftovers,
    replica_processes,
    running_platform,
    wait_until,
    write_iris_models,
)

IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
HOST = "iris.default.localhost"
PREDICT = "/v1/models/iris:predict"
ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices/iris"
CLIENTS = 4


def iris_service(home: Path) -> Path:
    """An sklearn InferenceService of a model in the home's pvc folder; the path of its YAML."""
    write_iris_models({home / "pvc" / "models" / "iris": LogisticRegression(max_iter=500)})
    resource = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {"predictor": {"sklearn": {"storageUri": "pvc://models/iris"}}},
    }
    path = home / "iris.yaml"
    path.write_text(yaml.safe_dump(resource))
    return path


def serve_iris(platform: PlatformProcess) -> None:
    platform.cli("apply", "-f", str(iris_service(platform.home)))
    platform.cli("wait", "--for=condition=Ready", "isvc/iris", "--timeout=240s")


def iris_replicas(home: Path) -> list[int]:
    """The replica processes serving the iris model (their command line names its folder)."""
    folder = str(home / "pvc" / "models" / "iris")
    return [pid for pid, cmdline in processes().items() if folder in cmdline and "modelplane" in cmdline]


def processes() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    """Whether the process runs (an exited one waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


class Load:
    """`CLIENTS` clients, each sending one request after another until stopped: predictions through the
    gateway, or with `api` reads of the InferenceService from the control-plane API."""

    def __init__(self, platform: PlatformProcess, *, api: bool = False) -> None:
        self.platform = platform
        self.api = api
        self.outcomes: list[int | str] = []  # status codes, or the name of a transport error
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
            thread.join(timeout=180)

    def count(self, outcome: int | str) -> int:
        with self._lock:
            return self.outcomes.count(outcome)

    def _client(self) -> None:
        if self.api:
            client = httpx.Client(base_url=self.platform.api_url, timeout=120)
            send = functools.partial(client.get, ISVC_PATH)
        else:
            client = httpx.Client(base_url=self.platform.gateway_url, headers={"host": HOST}, timeout=120)
            send = functools.partial(client.post, PREDICT, json=IRIS)
        with client:
            while not self._stop.is_set():
                try:
                    outcome: int | str = send().status_code
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                with self._lock:
                    self.outcomes.append(outcome)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("faults-home")
    try:
        with running_platform(home) as platform:
            serve_iris(platform)
            yield platform
    finally:
        kill_leftovers(home)


def test_a_replica_killed_under_load_fails_only_its_in_flight_requests_and_comes_back(platform):
    [killed] = iris_replicas(platform.home)
    with Load(platform) as load:
        wait_until(lambda: load.count(200) >= 20, "requests to succeed before the kill", platform)
        subprocess.run(["kill", "-9", str(killed)], check=True)
        served_before = load.count(200)
        wait_until(lambda: iris_replicas(platform.home) not in ([], [killed]), "a new replica", platform)
        wait_until(lambda: load.count(200) >= served_before + 20, "requests to succeed again", platform)
    failed = [outcome for outcome in load.outcomes if outcome != 200]
    # Each connection the gateway had to the killed replica fails one request at most: the one in flight
    # on it, or one sent on it in the instant the replica died, before the gateway saw it close (a POST
    # is not sent again: the replica may have died of it). There are at most CLIENTS of them, busy or
    # idle. Each failure is answered by the gateway (a 502), none refused or cut off.
    assert len(failed) <= 2 * CLIENTS, failed
    assert set(failed) <= {502}, failed
    assert "exited with code -9" in platform.cli("logs", "iris").stdout


def test_a_locked_store_is_a_clear_error_and_writes_work_again_once_it_is_released(platform, tmp_path):
    labelled = yaml.safe_load((platform.home / "iris.yaml").read_text())
    labelled["metadata"]["labels"] = {"faults": "store-locked"}
    path = tmp_path / "iris-labelled.yaml"
    path.write_text(yaml.safe_dump(labelled))
    holder = hold_store_lock(platform.home)
    try:
        result = platform.cli("apply", "-f", str(path), check=False)
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert f"is locked by process {holder.pid}" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        holder.communicate("release\n", timeout=30)
    assert "configured" in platform.cli("apply", "-f", str(path)).stdout
    response = platform.request("POST", HOST, PREDICT, json=IRIS)
    assert response.status_code == 200, response.text


def test_modelplane_up_on_a_locked_store_says_so_in_one_line(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with running_platform(home):
        pass  # the store is created
    holder = hold_store_lock(home)
    try:
        result = PlatformProcess(home).cli("up", "--api-port", "0", "--gateway-port", "0", check=False)
    finally:
        holder.communicate("release\n", timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"modelplane up: the store {home / 'store.db'} is locked by process {holder.pid} (waited 5s); "
        "stop what holds it open and try again"
    ]


def test_modelplane_up_on_a_damaged_store_file_says_so_in_one_line(tmp_path):
    home = tmp_path / "home"
    store = open_store(home)
    iris = yaml.safe_load(iris_service(home).read_text())
    for index in range(40):
        store.create({**iris, "metadata": {"name": f"s{index}", "namespace": "default"}})
    store.close()
    path = home / "store.db"
    os.truncate(path, path.stat().st_size // 2)
    result = PlatformProcess(home).cli("up", "--api-port", "0", "--gateway-port", "0", check=False)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"modelplane up: the store {path} is damaged (")
    assert "move it aside or restore it from a backup" in line


def test_modelplane_up_serves_every_service_but_one_whose_record_is_damaged(tmp_path):
    home = tmp_path / "home"
    store = open_store(home)
    iris = yaml.safe_load(iris_service(home).read_text())
    store.create({**iris, "metadata": {"name": "iris", "namespace": "default"}})
    store.create({**iris, "metadata": {"name": "broken", "namespace": "default"}})
    store.close()
    with contextlib.closing(sqlite3.connect(home / "store.db")) as db, db:
        db.execute("UPDATE resources SET body=substr(body, 1, length(body) / 2) WHERE name='broken'")
    with running_platform(home) as platform:
        platform.cli("wait", "--for=condition=Ready", "isvc/iris", "--timeout=240s")
        assert platform.request("POST", HOST, PREDICT, json=IRIS).status_code == 200
        result = platform.cli("get", "isvc", "broken", check=False)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [
            f"modelplane get: InferenceService default/broken cannot be read: its record in the store "
            f"{home / 'store.db'} is damaged; delete it and apply it again, or restore the store from a backup"
        ]
        listed = platform.cli("get", "isvc", "-o", "name").stdout.split()
        assert listed == ["inferenceservice.serving.kserve.io/iris"]
    warnings = [line for line in platform.log().splitlines() if "default/broken cannot be read" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], platform.log()[-4000:]
    assert "Traceback" not in platform.log()
    with contextlib.closing(sqlite3.connect(home / "store.db")) as db:
        assert db.execute("SELECT count(*) FROM resources WHERE name='broken'").fetchone() == (1,)


def hold_store_lock(home: Path) -> subprocess.Popen:
    """Another process with a write lock on the store (as an open `sqlite3` shell's transaction
    holds it), until it reads a line."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(home / 'store.db')!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_up_killed_with_sigkill_leaves_no_process_and_comes_back_without_a_new_apply(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    try:
        first = PlatformProcess(home).start()
        serve_iris(first)
        family = descendants(first.process.pid)
        assert iris_replicas(home) and set(iris_replicas(home)) <= family
        first.process.kill()
        first.process.wait()
        wait_until(lambda: not any(alive(pid) for pid in family), "every process of up to exit", first)

        second = PlatformProcess(home).start()
        try:
            statuses = []

            def served() -> bool:
                statuses.append(second.request("POST", HOST, PREDICT, json=IRIS).status_code)
                return statuses[-1] == 200

            wait_until(served, "the service to answer again", second)
            # Until its route is back the gateway says it is starting (503), never that it is unknown.
            assert set(statuses) <= {200, 503}, statuses
            assert len(iris_replicas(home)) == 1  # one replica, not one per start
            ready = second.cli("get", "isvc", "iris", "-o", "json").stdout
            assert any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in yaml.safe_load(ready)["status"]["conditions"]
            )
        finally:
            second.stop()
        assert iris_replicas(home) == []
    finally:
        kill_leftovers(home)


def api_answer(sock: socket.socket) -> bytes:
    """The head of the API's answer to a read of the service, sent on `sock`."""
    sock.sendall(f"GET {ISVC_PATH} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the API closed the connection after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head


@pytest.mark.parametrize("starts", ["warm", "cold"])
def test_sighup_restarts_the_control_plane_while_every_request_is_served(tmp_path, starts):
    """The control plane runs again in place (an upgrade would take effect): the gateway workers and the
    replica (forked by the zygote, or a child of the platform's own) serve on through it, the same
    processes, and the new control plane runs them."""
    home = tmp_path / "home"
    home.mkdir()
    try:
        platform = PlatformProcess(home, *(["--no-warm-starts"] if starts == "cold" else [])).start()
        try:
            serve_iris(platform)
            replicas, workers = set(iris_replicas(home)), gateway_workers(platform)
            assert replicas and workers
            api_address = httpx.URL(platform.api_url)
            kept = socket.create_connection((api_address.host, api_address.port), timeout=60)
            with kept, Load(platform) as load, Load(platform, api=True) as api_load:
                wait_until(lambda: load.count(200) >= 50, "requests to be served", platform)
                assert api_answer(kept).startswith(b"HTTP/1.1 200")
                platform.process.send_signal(signal.SIGHUP)
                assert platform.process.stdout.readline().startswith("modelplane is up: ")
                # A connection kept alive across the restart is answered by the program run again.
                assert api_answer(kept).startswith(b"HTTP/1.1 200")
                served = load.count(200)
                wait_until(lambda: load.count(200) >= served + 200, "requests after the restart", platform)
                # A second SIGHUP while the program run again is still starting must not end it.
                platform.process.send_signal(signal.SIGHUP)
                time.sleep(0.2)
                platform.process.send_signal(signal.SIGHUP)
                assert platform.process.stdout.readline().startswith("modelplane is up: ")
                served = load.count(200)
                wait_until(lambda: load.count(200) >= served + 200, "requests after two more", platform)
                assert platform.process.poll() is None
            for done in (load, api_load):  # the API's clients waited for the program run again
                assert set(done.outcomes) == {200}, {o: done.outcomes.count(o) for o in set(done.outcomes)}
            assert set(iris_replicas(home)) == replicas
            assert gateway_workers(platform) == workers
            assert "taken back after a restart" in replica_log(home)

            # The new control plane runs the replica it took back: deleting the service stops it.
            platform.cli("delete", "isvc", "iris")
            wait_until(lambda: not iris_replicas(home), "the replica to stop", platform)
        finally:
            platform.stop()
        assert replica_processes(home) == []
    finally:
        kill_leftovers(home)


def replica_log(home: Path) -> str:
    return "".join(path.read_text() for path in (home / "logs" / "default" / "iris").rglob("*.log"))


def gateway_workers(platform: PlatformProcess) -> set[int]:
    family = descendants(platform.process.pid)
    return {pid for pid, cmdline in processes().items() if pid in family and "gateway.worker" in cmdline}
