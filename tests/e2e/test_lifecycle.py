"""A replica's lifecycle hooks, stop signal and grace period, with the supervisor and real processes."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from modelplane.control import Revision
from modelplane.local.replicas.supervisor import RevisionReplicas
from tests.e2e.test_supervisor import probed, running, settings, until

# An HTTP server on $PORT that notes in $MARKS the signals it gets (SIGTERM and SIGINT end it).
SERVER = """
import os, signal, sys, http.server as s
marks = os.environ["MARKS"]
def note(signum, frame):
    with open(marks, "a") as out:
        out.write(signal.Signals(signum).name + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, note)
signal.signal(signal.SIGINT, note)
s.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), s.SimpleHTTPRequestHandler).serve_forever()
"""
# The same that does not stop when asked.
STUBBORN = """
import os, signal, http.server as s
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), s.SimpleHTTPRequestHandler).serve_forever()
"""


def server(marks: Path, program: str = SERVER, **fields: object) -> Revision:
    found = probed([sys.executable, "-c", program], **fields)
    found.template["env"] = {"MARKS": str(marks)}
    return found


def append(path: Path, text: str) -> dict:
    return {"exec": {"command": ["sh", "-c", f"echo {text} >> {path}"]}}


def test_the_pre_stop_hook_runs_before_the_stop_signal(tmp_path):
    marks = tmp_path / "marks"

    async def scenario():
        template = server(marks, lifecycle={"preStop": append(marks, "preStop")})
        async with running(template, tmp_path) as replicas:
            await until(lambda: replicas.addresses(), "ready")
        assert marks.read_text().split() == ["preStop", "SIGTERM"]

    asyncio.run(scenario())


def test_the_stop_signal_is_the_container_s(tmp_path):
    marks = tmp_path / "marks"

    async def scenario():
        async with running(server(marks, lifecycle={"stopSignal": "SIGINT"}), tmp_path) as replicas:
            await until(lambda: replicas.addresses(), "ready")
        assert marks.read_text().split() == ["SIGINT"]

    asyncio.run(scenario())


def test_a_replica_is_killed_after_its_own_grace_period(tmp_path):
    async def scenario():
        template = server(tmp_path / "marks", STUBBORN, terminationGracePeriodSeconds=1)
        replicas_settings = settings(tmp_path, stop_grace=600)  # the platform's: not the one used
        replicas = RevisionReplicas(template, "default", "demo", 1, replicas_settings, lambda: None)
        replicas.start()
        await until(lambda: replicas.addresses(), "ready")
        process = replicas.replicas[0]._process
        began = time.monotonic()
        await replicas.stop()
        assert process.returncode == -signal.SIGKILL
        assert time.monotonic() - began < 300  # well before the platform's 600 s

    asyncio.run(scenario())


def test_a_replica_gets_no_request_before_its_post_start_hook_ends(tmp_path):
    marks = tmp_path / "marks"

    async def scenario():
        hook = {"exec": {"command": ["sh", "-c", f"sleep 1; echo postStart >> {marks}"]}}
        async with running(server(marks, lifecycle={"postStart": hook}), tmp_path) as replicas:
            await until(lambda: replicas.addresses(), "ready")
            assert marks.read_text().split() == ["postStart"]  # the server answered long before

    asyncio.run(scenario())


def test_a_failing_post_start_hook_stops_the_replica_and_says_why(tmp_path):
    marks = tmp_path / "marks"

    async def scenario():
        hook = {"exec": {"command": ["sh", "-c", "echo no config; exit 4"]}}
        async with running(server(marks, lifecycle={"postStart": hook}), tmp_path) as replicas:
            state = await until(
                lambda: (found := replicas.state()).failure is not None and found, "the hook's failure"
            )
            assert not replicas.addresses()
        assert state.phase == "FailedToLoad"
        assert state.failure.message.startswith(
            "FailedPostStartHook: exec sh -c echo no config; exit 4: exit code 4"
        )
        log = (tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log").read_text()
        assert "FailedPostStartHook" in log and "exited with code" in log

    asyncio.run(scenario())


def test_a_replica_restarted_for_its_liveness_probe_runs_its_pre_stop_hook_first(tmp_path):
    marks = tmp_path / "marks"

    async def scenario():
        # The probe fails only once the server answers, so its stop-signal handler is in place.
        unwell = tmp_path / "unwell"
        liveness = {
            "exec": {"command": ["sh", "-c", f"test ! -e {unwell}"]},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
        template = server(marks, lifecycle={"preStop": append(marks, "preStop")}, livenessProbe=liveness)
        async with running(template, tmp_path) as replicas:
            await until(lambda: replicas.addresses(), "ready")
            unwell.touch()
            await until(lambda: replicas.replicas[0].restarts >= 1, "a restart")
        assert marks.read_text().split()[:2] == ["preStop", "SIGTERM"]

    asyncio.run(scenario())


def test_a_post_start_hook_still_running_when_its_replica_ends_is_stopped_with_it(tmp_path):
    hook_pid = tmp_path / "hook.pid"

    async def scenario():
        hook = {"exec": {"command": ["sh", "-c", f"echo $$ > {hook_pid}; exec sleep 600"]}}
        exits = [sys.executable, "-c", "import time; time.sleep(1)"]
        async with running(probed(exits, lifecycle={"postStart": hook}), tmp_path) as replicas:
            await until(
                lambda: replicas.replicas[0].restarts >= 1 and hook_pid.exists(), "the replica to end"
            )
            pid = int(hook_pid.read_text())
            await until(lambda: not Path(f"/proc/{pid}").exists(), "the hook to be stopped")

    asyncio.run(scenario())
