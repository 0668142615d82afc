"""The supervisor with small real processes: failures, restarts, readiness, stopping."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelplane.control import Revision
from modelplane.local.ports import free_loopback_port
from modelplane.local.replicas.supervisor import RevisionReplicas, SupervisorSettings, replica_targets

TIMEOUT = 120


def revision(command: list[str], storage: dict | None = None, name: str = "demo-predictor-00001") -> Revision:
    template = {
        "component": "predictor",
        "command": command,
        "env": {},
        "ports": {"http": 8080, "grpc": 8081},
        "readinessPath": None,
        "storage": storage,
    }
    return Revision(name, "predictor", 1, "digest", template)


def settings(tmp_path: Path, **overrides) -> SupervisorSettings:
    return SupervisorSettings(logs_dir=tmp_path / "logs", backoff_initial=0.1, backoff_max=0.5, **overrides)


async def until(check, what: str):
    async with asyncio.timeout(TIMEOUT):
        while not (result := check()):
            await asyncio.sleep(0.05)
    assert result, what
    return result


def test_a_replica_that_exits_fails_to_load_with_its_last_line_and_is_restarted(tmp_path):
    async def scenario():
        changes = []
        command = ["python", "-c", "import sys; print('model file is missing'); sys.exit(3)"]
        replicas = RevisionReplicas(
            revision(command), "default", "demo", 1, settings(tmp_path), lambda: changes.append(1)
        )
        replicas.start()
        try:
            await until(lambda: replicas.replicas[0].restarts >= 2, "restarts")
            state = replicas.state()
            assert state.phase == "FailedToLoad"
            assert state.failure.reason == "ModelLoadFailed"
            assert state.failure.message == "model file is missing"
            assert state.failure.exit_code == 3
            assert changes
        finally:
            await replicas.stop()
        log = (tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log").read_text()
        assert "model file is missing" in log and "exited with code 3" in log and "restarting in" in log

    asyncio.run(scenario())


def test_a_server_gets_its_own_port_becomes_ready_and_comes_back_when_killed(tmp_path):
    async def scenario():
        command = ["python", "-m", "http.server", "8080", "--bind", "127.0.0.1"]
        replicas = RevisionReplicas(revision(command), "default", "demo", 2, settings(tmp_path), lambda: None)
        replicas.start()
        try:
            addresses = await until(
                lambda: len(replicas.addresses()) == 2 and replicas.addresses(), "two ready"
            )
            assert replicas.state().phase == "Loaded" and replicas.state().ready_replicas == 2
            assert len(set(addresses)) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)
            killed = replicas.replicas[0]
            os.kill(killed.pid, signal.SIGKILL)
            await until(lambda: killed.restarts == 1 and killed.phase == "Loaded", "the killed one back")
        finally:
            await replicas.stop()
        assert all(replica.pid is None for replica in replicas.replicas)

    asyncio.run(scenario())


def test_a_replica_never_ready_within_its_progress_deadline_fails_and_keeps_running(tmp_path):
    """As Knative fails a revision whose initial scale is never achieved: the revision says why, and
    the replica is left running, so that a readiness that comes late still counts."""

    async def scenario():
        command = ["python", "-m", "http.server", "8080", "--bind", "127.0.0.1"]
        never_ready = revision(command)
        never_ready.template.update(readinessPath="/never", progressDeadline=0.5)
        replicas = RevisionReplicas(never_ready, "default", "demo", 1, settings(tmp_path), lambda: None)
        replicas.start()
        try:
            await until(lambda: replicas.state().phase == "FailedToLoad", "failed past its deadline")
            failure = replicas.state().failure
            assert failure.message.startswith("Initial scale was never achieved")
            assert "progress deadline of 0.5s" in failure.message
            assert replicas.replicas[0].pid is not None and replicas.replicas[0].restarts == 0
        finally:
            await replicas.stop()

    asyncio.run(scenario())


def test_a_replica_ready_within_its_progress_deadline_does_not_fail_when_it_later_is_not(tmp_path):
    async def scenario():
        command = ["python", "-m", "http.server", "8080", "--bind", "127.0.0.1"]
        ready_once = revision(command)
        ready_once.template.update(progressDeadline=0.5)
        replicas = RevisionReplicas(ready_once, "default", "demo", 1, settings(tmp_path), lambda: None)
        replicas.start()
        try:
            await until(lambda: replicas.addresses(), "ready")
            ready_once.template["readinessPath"] = "/never"  # its readiness fails from now on
            await until(lambda: replicas.state().phase == "Loading", "not ready any more")
            await asyncio.sleep(1.0)  # past the deadline
            assert replicas.state().phase == "Loading"
        finally:
            await replicas.stop()

    asyncio.run(scenario())


def test_a_replica_whose_log_cannot_be_written_is_still_restarted_and_comes_back(tmp_path, caplog):
    """A full or read-only disk: the exit cannot be noted in the replica's log (here its path is a folder,
    which even root cannot append to), and the replica is restarted all the same once it can be."""

    async def scenario():
        command = ["python", "-m", "http.server", "8080", "--bind", "127.0.0.1"]
        replicas = RevisionReplicas(revision(command), "default", "demo", 1, settings(tmp_path), lambda: None)
        replicas.start()
        log = tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log"
        try:
            await until(lambda: replicas.addresses(), "ready")
            replica = replicas.replicas[0]
            log.rename(log.with_suffix(".old"))
            log.mkdir()
            os.kill(replica.pid, signal.SIGKILL)
            await until(lambda: replica.restarts >= 2, "restarts while the log cannot be written")
            assert not replicas.addresses()
            log.rmdir()
            await until(lambda: replica.phase == "Loaded" and replicas.addresses(), "the replica back")
        finally:
            await replicas.stop()

    asyncio.run(scenario())
    assert "cannot write its log" in caplog.text


def test_a_replica_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    async def scenario():
        program = (
            "import signal, time, http.server as s; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "s.HTTPServer(('127.0.0.1', int(__import__('os').environ['PORT'])), s.SimpleHTTPRequestHandler).serve_forever()"
        )
        replicas = RevisionReplicas(
            revision([sys.executable, "-c", program]),
            "default",
            "demo",
            1,
            settings(tmp_path, stop_grace=1),
            lambda: None,
        )
        replicas.start()
        await until(lambda: replicas.addresses(), "ready")
        process = replicas.replicas[0]._process
        await replicas.stop()
        assert process.returncode == -signal.SIGKILL

    asyncio.run(scenario())


def probed(command: list[str], **fields: object) -> Revision:
    """A revision whose template also has `fields` (a container's probes, storageUris)."""
    found = revision(command)
    return Revision(found.name, found.component, 1, "digest", {**found.template, **fields})


@contextlib.asynccontextmanager
async def running(
    template: Revision, tmp_path: Path, service: str = "demo"
) -> AsyncIterator[RevisionReplicas]:
    """One replica of `template` for the duration of the block."""
    replicas = RevisionReplicas(template, "default", service, 1, settings(tmp_path), lambda: None)
    replicas.start()
    try:
        yield replicas
    finally:
        await replicas.stop()


HTTP_SERVER = ["python", "-m", "http.server", "8080", "--bind", "127.0.0.1"]
# A server that speaks no HTTP: the default readiness probe would never find it ready.
SILENT_SERVER = [
    sys.executable,
    "-c",
    "import os, socket, time; s = socket.socket(); s.bind(('127.0.0.1', int(os.environ['PORT']))); "
    "s.listen(); time.sleep(600)",
]


def test_a_hung_replica_fails_its_liveness_probe_and_is_restarted(tmp_path):
    liveness = {
        "httpGet": {"path": "/", "port": 8080},
        "periodSeconds": 1,
        "timeoutSeconds": 1,
        "failureThreshold": 2,
        "terminationGracePeriodSeconds": 1,
    }

    async def scenario():
        async with running(probed(HTTP_SERVER, livenessProbe=liveness), tmp_path) as replicas:
            await until(lambda: replicas.addresses(), "ready")
            replica = replicas.replicas[0]
            hung = replica.pid
            os.kill(hung, signal.SIGSTOP)  # it no longer answers, nor exits
            await until(lambda: replica.restarts == 1 and replica.phase == "Loaded", "restarted and ready")
            assert replica.pid != hung
            assert replica.last_termination.exit_code == 137  # SIGTERM waits while stopped: SIGKILL
        log = (tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log").read_text()
        assert "liveness probe failed 2 times: GET http://127.0.0.1:" in log and "timed out after 1s" in log

    asyncio.run(scenario())


def test_a_replica_is_not_ready_before_its_startup_probe_passes_nor_kept_when_it_fails(tmp_path):
    flag = tmp_path / "warmed-up"
    startup = {"exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 1, "failureThreshold": 30}
    never = {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}

    async def scenario():
        async with running(probed(HTTP_SERVER, startupProbe=startup), tmp_path) as replicas:
            await asyncio.sleep(3)  # the server answers its readiness probe by now, but has not started
            assert replicas.addresses() == () and replicas.state().phase == "Loading"
            flag.touch()
            await until(lambda: replicas.addresses(), "ready once its startup probe passed")
        async with running(probed(HTTP_SERVER, startupProbe=never), tmp_path, "never") as replicas:
            await until(lambda: replicas.state().phase == "FailedToLoad", "failed to load")
            assert replicas.state().failure.message == "startup probe failed 2 times: exec false: exit code 1"

    asyncio.run(scenario())


def test_a_declared_readiness_probe_decides_when_a_replica_gets_requests(tmp_path):
    flag = tmp_path / "serving"
    flag.touch()
    readiness = {"exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 1, "failureThreshold": 2}
    tcp = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}

    async def scenario():
        async with running(probed(SILENT_SERVER, readinessProbe=readiness), tmp_path) as replicas:
            await until(lambda: replicas.addresses(), "ready")
            flag.unlink()
            await asyncio.sleep(0.5)
            assert replicas.addresses(), "one failure is not failureThreshold"
            await until(lambda: not replicas.addresses(), "out of the routes after two failures")
            assert replicas.replicas[0].restarts == 0  # not ready is not restarted
            flag.touch()
            await until(lambda: replicas.addresses(), "ready again")
        async with running(probed(SILENT_SERVER, readinessProbe=tcp), tmp_path, "tcp") as replicas:
            await until(lambda: replicas.addresses(), "ready on a TCP connect")

    asyncio.run(scenario())


def test_storage_uris_are_laid_out_at_their_mount_paths(tmp_path):
    base, adapter = tmp_path / "base", tmp_path / "adapter"
    for folder, text in ((base, "weights"), (adapter, "lora")):
        folder.mkdir()
        (folder / "model.txt").write_text(text)
    uris = [
        {"uri": f"file://{base}", "mountPath": "/mnt/models/base"},
        {"uri": f"file://{adapter}", "mountPath": "/mnt/models/adapters/one"},
    ]

    async def scenario():
        served = probed([*HTTP_SERVER, "--directory", "/mnt/models"], storageUris=uris)
        async with running(served, tmp_path) as replicas:
            (address,) = await until(lambda: replicas.addresses(), "ready")
            async with httpx.AsyncClient(base_url=f"http://{address}") as client:
                assert (await client.get("/base/model.txt")).text == "weights"
                assert (await client.get("/adapters/one/model.txt")).text == "lora"

    asyncio.run(scenario())


def test_a_program_that_opens_mnt_models_in_its_own_code_is_told_where_its_model_is(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.joblib").write_text("weights")
    (tmp_path / "app.py").write_text("open('/mnt/models/model.joblib')\n")  # not in its arguments
    opens_it_itself = ["python", str(tmp_path / "app.py")]
    storage = {"storageUri": f"file://{tmp_path}/model", "storage": None}

    async def scenario():
        async with running(revision(opens_it_itself, storage), tmp_path) as replicas:
            state = await until(lambda: (s := replicas.state()).phase == "FailedToLoad" and s, "failure")
            assert state.failure.message.startswith("FileNotFoundError: ")
            assert "/mnt/models is " in state.failure.message
            assert "where its arguments or env name /mnt/models (as in --model_dir=/mnt/models)" in (
                state.failure.message
            )

    if not Path("/mnt/models").exists():
        asyncio.run(scenario())


def test_a_model_the_storage_initializer_cannot_fetch_fails_to_load(tmp_path):
    async def scenario():
        storage = {"storageUri": f"file://{tmp_path}/nowhere/model.joblib", "storage": None}
        replicas = RevisionReplicas(
            revision(["python", "-c", "pass"], storage),
            "default",
            "demo",
            1,
            settings(tmp_path),
            lambda: None,
        )
        replicas.start()
        try:
            state = await until(lambda: (s := replicas.state()).phase == "FailedToLoad" and s, "failure")
            assert state.failure.location == "storage-initializer"
            assert "nowhere" in state.failure.message
        finally:
            await replicas.stop()

    asyncio.run(scenario())


def test_a_remote_model_is_fetched_by_the_storage_initializer_process_into_mnt_models(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELPLANE_CACHE_DIR", str(tmp_path / "cache"))
    served = tmp_path / "served"
    served.mkdir()
    (served / "model.txt").write_text("a model")
    port = free_loopback_port()
    http = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(served)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    async def scenario():
        program = "import os, sys, time; print('files:', sorted(os.listdir(sys.argv[1])), flush=True); time.sleep(300)"
        storage = {"storageUri": f"http://127.0.0.1:{port}/model.txt", "storage": None}
        replicas = RevisionReplicas(
            revision(["python", "-c", program, "/mnt/models"], storage),
            "default",
            "demo",
            1,
            settings(tmp_path),
            lambda: None,
        )
        log = tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log"
        replicas.start()
        try:
            await until(
                lambda: log.exists() and "files: ['model.txt']" in log.read_text(), "the fetched model"
            )
            assert "storage initializer: fetching http://127.0.0.1" in log.read_text()
        finally:
            await replicas.stop()

    try:
        asyncio.run(scenario())
    finally:
        http.terminate()
        http.wait()


def test_a_program_that_is_not_there_fails_to_load_and_stops_at_once(tmp_path):
    async def scenario():
        replicas = RevisionReplicas(
            revision(["/nonexistent/model-server", "--port", "8080"]),
            "default",
            "demo",
            1,
            settings(tmp_path),
            lambda: None,
        )
        replicas.start()
        try:
            state = await until(lambda: (s := replicas.state()).phase == "FailedToLoad" and s, "failure")
            assert state.failure.message.startswith("cannot run /nonexistent/model-server: ")
        finally:
            await replicas.stop()

    asyncio.run(scenario())


def test_scaling_starts_replicas_and_stops_the_surplus_only_when_told(tmp_path):
    async def scenario():
        changes = []
        command = ["python", "-m", "http.server", "8080", "--bind", "127.0.0.1"]
        replicas = RevisionReplicas(
            revision(command), "default", "demo", 1, settings(tmp_path), lambda: changes.append(1)
        )
        replicas.start()
        try:
            await until(lambda: len(replicas.addresses()) == 1, "one ready")
            replicas.scale(3)
            assert replicas.desired == 3
            await until(lambda: len(replicas.addresses()) == 3, "three ready")
            assert sorted(r.index for r in replicas.replicas) == [0, 1, 2]

            busy, idle = (next(r for r in replicas.replicas if r.index == i) for i in (2, 1))
            replicas.scale(2, busy={busy.address})
            assert sorted(r.index for r in replicas.replicas) == [0, 2]  # an idle one goes first
            replicas.scale(1)
            assert [r.index for r in replicas.replicas] == [0]  # none busy: the newest goes
            assert len(replicas.addresses()) == 1
            assert busy.pid is not None and idle.pid is not None, "stopped before the routes were told"
            replicas.stop_removed()
            await until(lambda: busy.pid is None and idle.pid is None, "the surplus stopped")

            replicas.scale(2)  # the free index is taken again, with its log file
            await until(lambda: len(replicas.addresses()) == 2, "two ready")
            assert sorted(r.index for r in replicas.replicas) == [0, 1]
        finally:
            await replicas.stop()
        assert all(replica.pid is None for replica in replicas.replicas)
        logs = sorted(p.name for p in (tmp_path / "logs/default/demo/predictor").iterdir())
        assert logs == [f"demo-predictor-00001-{i}.log" for i in range(3)]

    asyncio.run(scenario())


def test_a_revision_scaled_to_zero_is_ready_with_no_replica(tmp_path):
    async def scenario():
        command = ["python", "-m", "http.server", "8080", "--bind", "127.0.0.1"]
        replicas = RevisionReplicas(revision(command), "default", "demo", 1, settings(tmp_path), lambda: None)
        replicas.start()
        try:
            await until(lambda: replicas.addresses(), "ready")
            (process,) = [r for r in replicas.replicas]
            replicas.scale(0)
            replicas.stop_removed()
            state = replicas.state()
            assert (state.phase, state.ready_replicas, state.desired_replicas) == ("Loaded", 0, 0)
            assert replicas.addresses() == ()
            await until(lambda: process.pid is None, "stopped")
        finally:
            await replicas.stop()

    asyncio.run(scenario())


# A server that answers every request with the folder it runs in.
WHERE = """
import os, http.server as s
class Where(s.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.getcwd().encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Where).serve_forever()
"""


def test_a_replica_starts_in_its_working_dir_where_this_machine_has_it(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()

    async def where(working_dir: str) -> str:
        async with running(
            probed([sys.executable, "-c", WHERE], workingDir=working_dir), tmp_path
        ) as replicas:
            (address,) = await until(lambda: replicas.addresses(), "ready")
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://{address}/")).text

    assert asyncio.run(where(str(folder))) == str(folder)
    assert asyncio.run(where("/no/such/folder")) == os.getcwd()
    log = (tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log").read_text()
    assert "workingDir /no/such/folder is not a folder on this machine" in log


def test_a_child_without_a_session_of_its_own_yet_is_signalled_alone():
    """A replica forked a moment ago has no process group of its own before its `setsid`: the stop
    signal still reaches it."""
    from modelplane.local.replicas.supervisor import _signal_group

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # in this test's group
    try:
        assert _signal_group(child.pid, signal.SIGTERM) is False
        assert child.wait(timeout=30) == -signal.SIGTERM
    finally:
        child.kill()


# A server that says in its log each connection it accepts and each GET it answers; SIGUSR1 closes its
# port and leaves it running.
COUNTING_SERVER = [
    sys.executable,
    "-c",
    """
import http.server, os, signal, threading, time

class Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        print("GET", self.path, flush=True)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

class Counting(http.server.ThreadingHTTPServer):
    def get_request(self):
        accepted = super().get_request()
        print("accepted", flush=True)
        return accepted

server = Counting(("127.0.0.1", int(os.environ["PORT"])), Answer)
signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
time.sleep(600)
""",
]


def log_lines(tmp_path: Path, text: str) -> int:
    log = tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log"
    return sum(line == text for line in log.read_text().splitlines())


def test_a_ready_program_is_probed_with_connects_between_its_http_probes(tmp_path):
    """KServe's SDK logs every HTTP request, its readiness probe's too: once ready, a program that is not
    modelplane's own server is probed mostly with a TCP connect (Knative's default readiness probe)."""

    async def scenario():
        quiet = settings(tmp_path, ready_probe_interval=0.05, ready_http_probe_interval=3600)
        replicas = RevisionReplicas(revision(COUNTING_SERVER), "default", "demo", 1, quiet, lambda: None)
        replicas.start()
        try:
            await until(lambda: replicas.addresses(), "ready")
            gets, accepts = log_lines(tmp_path, "GET /v2/health/ready"), log_lines(tmp_path, "accepted")
            await until(
                lambda: (
                    log_lines(tmp_path, "accepted") >= accepts + 5
                    or log_lines(tmp_path, "GET /v2/health/ready") >= gets + 5
                ),
                "probed five times more",
            )
            assert log_lines(tmp_path, "GET /v2/health/ready") == gets
            os.kill(replicas.replicas[0].pid, signal.SIGUSR1)  # its port closes, the process runs on
            await until(lambda: not replicas.addresses(), "out of the routes once its port is closed")
            assert replicas.replicas[0].restarts == 0
        finally:
            await replicas.stop()

    asyncio.run(scenario())


def test_a_ready_program_that_hangs_is_taken_out_of_the_routes_by_its_http_probe(tmp_path):
    """A hung process still takes TCP connections (the kernel accepts them): its HTTP probe notices."""

    async def scenario():
        often = settings(tmp_path, ready_probe_interval=0.05, ready_http_probe_interval=0.5)
        replicas = RevisionReplicas(revision(COUNTING_SERVER), "default", "demo", 1, often, lambda: None)
        replicas.start()
        try:
            await until(lambda: replicas.addresses(), "ready")
            hung = replicas.replicas[0].pid
            os.kill(hung, signal.SIGSTOP)
            try:
                await until(lambda: not replicas.addresses(), "out of the routes while it hangs")
            finally:
                os.kill(hung, signal.SIGCONT)
            await until(lambda: replicas.addresses(), "ready again")
        finally:
            await replicas.stop()

    asyncio.run(scenario())


def test_a_batcher_sidecar_takes_the_replicas_requests_and_lives_and_dies_with_it(tmp_path):
    def listens(address: str) -> bool:
        host, port = address.split(":")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return False
        return True

    async def scenario():
        command = ["python", "-m", "http.server", "8080", "--bind", "127.0.0.1"]
        batched = revision(command)
        batched.template["batcher"] = {"maxBatchSize": 2}
        replicas = RevisionReplicas(batched, "default", "demo", 1, settings(tmp_path), lambda: None)
        replicas.start()
        replica = replicas.replicas[0]
        try:
            [address] = await until(replicas.addresses, "ready")
            sidecar = replica._batcher
            assert address == sidecar.address and replica._ports.http != sidecar.port
            async with httpx.AsyncClient() as client:  # passed on to the program, as it answered
                listing = await client.get(f"http://{address}/")
            assert listing.status_code == 200 and "Directory listing" in listing.text

            # The program ends: its sidecar with it; both start again.
            os.kill(replica.pid, signal.SIGKILL)
            await until(lambda: replica.restarts == 1 and replicas.addresses(), "the program back")
            assert sidecar.process.returncode is not None and not listens(address)
            [address] = replicas.addresses()
            assert address == replica._batcher.address

            # The sidecar ends on its own: the program is stopped, and both start again.
            replica._batcher.process.kill()
            await until(lambda: replica.restarts == 2 and replicas.addresses(), "both back")
            sidecar = replica._batcher
        finally:
            await replicas.stop()
        assert replica.pid is None and sidecar.process.returncode is not None
        log = (tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log").read_text()
        assert "the batcher sidecar exited with code -9: stopping the replica" in log
        assert log.count("batcher sidecar started") == 3

    asyncio.run(scenario())


def test_a_scraped_batcher_sidecar_serves_its_metrics_with_the_programs_where_it_is_scraped(tmp_path):
    # The program serves its metrics at the service's scrape path: a file there.
    site = tmp_path / "site"
    (site / "stats").mkdir(parents=True)
    (site / "stats" / "prometheus").write_text("# TYPE program_up gauge\nprogram_up 1.0\n")

    async def scenario():
        command = ["python", "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", str(site)]
        batched = revision(command)
        batched.template["batcher"] = {"maxLatency": 10, "metricsPath": "/stats/prometheus"}
        replicas = RevisionReplicas(batched, "default", "demo", 1, settings(tmp_path), lambda: None)
        replicas.start()
        try:
            [address] = await until(replicas.addresses, "ready")
            sidecar = replicas.replicas[0]._batcher
            [target] = replica_targets(replicas, "/stats/prometheus", (("namespace", "default"),))
            # Its own port, not the one the gateway sends the requests to.
            assert target.url == f"http://127.0.0.1:{sidecar.metrics_port}/stats/prometheus"
            assert sidecar.metrics_port not in (sidecar.port, replicas.replicas[0]._ports.http)
            async with httpx.AsyncClient() as client:
                # The program does not take POSTs (501): the request is counted all the same.
                predict = {"instances": [[1]]}
                await client.post(f"http://{address}/v1/models/demo:predict", json=predict)
                page = await until_answered(client, target.url)
            samples = [
                (sample.name, sample.labels, sample.value)
                for family in text_string_to_metric_families(page)
                for sample in family.samples
            ]
            assert ("modelplane_batcher_requests_total", {"model_name": "demo"}, 1.0) in samples
            assert [sample for sample in samples if sample[0] == "program_up"] == [("program_up", {}, 1.0)]
        finally:
            await replicas.stop()

    asyncio.run(scenario())


async def until_answered(client: httpx.AsyncClient, url: str) -> str:
    """The page at `url`, once it answers 200 (a sidecar binds its metrics port just after its own)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            with contextlib.suppress(httpx.HTTPError):
                answer = await client.get(url)
                if answer.status_code == 200:
                    return answer.text
            await asyncio.sleep(0.05)


# Answers GETs until SIGUSR1; then it runs on with its port open and answers nothing more.
STOPS_ANSWERING = [
    sys.executable,
    "-c",
    """
import http.server, os, signal, threading

class Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if stuck.is_set():
            threading.Event().wait()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

stuck = threading.Event()
signal.signal(signal.SIGUSR1, lambda *_: stuck.set())
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Answer).serve_forever()
""",
]


def test_a_program_that_stops_answering_is_noticed_by_its_containers_probes_as_they_are_set(tmp_path):
    """Not modelplane's own server, alive with its port open: its readiness probe's period, timeout and
    failureThreshold take it out of the routes, its liveness probe's restart it; the platform's own HTTP
    probe (every hour here) has no part in it."""
    readiness = {
        "httpGet": {"path": "/ready", "port": 8080},
        "periodSeconds": 1,
        "timeoutSeconds": 1,
        "failureThreshold": 1,
    }
    liveness = {**readiness, "httpGet": {"path": "/live", "port": 8080}, "failureThreshold": 4}

    async def scenario():
        slow = settings(tmp_path, ready_http_probe_interval=3600)
        template = probed(STOPS_ANSWERING, readinessProbe=readiness, livenessProbe=liveness)
        replicas = RevisionReplicas(template, "default", "demo", 1, slow, lambda: None)
        replicas.start()
        try:
            await until(lambda: replicas.addresses(), "ready")
            replica = replicas.replicas[0]
            stuck = replica.pid
            os.kill(stuck, signal.SIGUSR1)
            await until(lambda: not replicas.addresses(), "out of the routes once its readiness probe fails")
            await until(
                lambda: replica.restarts == 1 and replicas.addresses(), "restarted by its liveness probe"
            )
            assert replica.pid != stuck
        finally:
            await replicas.stop()
        log = (tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log").read_text()
        assert "liveness probe failed 4 times: GET http://127.0.0.1:" in log and "timed out after 1s" in log

    asyncio.run(scenario())
