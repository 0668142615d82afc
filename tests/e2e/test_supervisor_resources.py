"""The supervisor acting on resources with small real processes: a memory limit enforced on a process
tree, GPUs handed out one replica at a time, replicas that wait for them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelplane.control import Revision
from modelplane.local.replicas.gpus import GpuAllocator, GpuInventory
from modelplane.local.replicas.supervisor import RevisionReplicas, SupervisorSettings
from tests.e2e.test_supervisor import until

# A process that serves HTTP on $PORT (so it is ready) and says which GPUs it sees.
SERVER = (
    "import os, http.server as s; print('gpus:', repr(os.environ['CUDA_VISIBLE_DEVICES']), flush=True); "
    "s.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), s.SimpleHTTPRequestHandler).serve_forever()"
)


def revision(program: str, resources: dict, name: str = "demo-predictor-00001") -> Revision:
    template = {
        "component": "predictor",
        "command": ["python", "-c", program],
        "env": {},
        "ports": {"http": 8080, "grpc": 8081},
        "readinessPath": None,
        "storage": None,
        "resources": resources,
    }
    return Revision(name, "predictor", 1, name, template)


def settings(tmp_path: Path, gpus: tuple[str, ...] = ()) -> SupervisorSettings:
    return SupervisorSettings(
        logs_dir=tmp_path / "logs",
        backoff_initial=0.1,
        backoff_max=0.5,
        memory_check_interval=0.2,
        gpus=GpuAllocator(GpuInventory(gpus, "--gpus")),
    )


def test_a_replica_whose_process_tree_goes_over_its_memory_limit_is_oom_killed_and_restarted(tmp_path):
    # The memory is held by a child of the replica's process: the whole tree counts.
    program = (
        "import subprocess, sys; subprocess.run([sys.executable, '-c', "
        "'import time; hog = bytearray(300 << 20); time.sleep(300)'])"
    )

    async def scenario():
        replicas = RevisionReplicas(
            revision(program, {"limits": {"memory": "128Mi"}}),
            "default",
            "demo",
            1,
            settings(tmp_path),
            lambda: None,
        )
        replicas.start()
        try:
            state = await until(
                lambda: (s := replicas.state()).phase == "FailedToLoad" and s.restarts >= 1 and s, "OOMKilled"
            )
        finally:
            await replicas.stop()
        assert state.failure.message.startswith("OOMKilled: it held ")
        assert state.failure.message.endswith(", over its memory limit of 128Mi")
        assert state.failure.exit_code == 137
        assert (state.last_termination.reason, state.last_termination.exit_code) == ("OOMKilled", 137)
        log = (tmp_path / "logs/default/demo/predictor/demo-predictor-00001-0.log").read_text()
        assert "OOMKilled: it held" in log and "restarting in" in log

    asyncio.run(scenario())


def test_a_ready_replica_over_its_limit_comes_back_and_its_last_state_says_oomkilled(tmp_path):
    program = (
        "import os, threading, http.server as s; hog = []; "
        "threading.Timer(0.5, lambda: hog.append(bytearray(300 << 20))).start(); "
        "s.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), s.SimpleHTTPRequestHandler).serve_forever()"
    )

    async def scenario():
        replicas = RevisionReplicas(
            revision(program, {"limits": {"memory": "128Mi"}}),
            "default",
            "demo",
            1,
            settings(tmp_path),
            lambda: None,
        )
        replicas.start()
        try:
            state = await until(
                lambda: (s := replicas.state()).restarts >= 1 and s.last_termination and s, "a restart"
            )
        finally:
            await replicas.stop()
        assert state.last_termination.reason == "OOMKilled"
        assert state.last_termination.message.endswith("over its memory limit of 128Mi")

    asyncio.run(scenario())


def gpus_seen(tmp_path: Path, revision_name: str, index: int = 0) -> str | None:
    log = tmp_path / f"logs/default/demo/predictor/{revision_name}-{index}.log"
    if not log.exists():
        return None
    lines = [line for line in log.read_text().splitlines() if line.startswith("gpus: ")]
    return lines[-1].removeprefix("gpus: ") if lines else None


def test_gpus_go_to_one_replica_each_and_a_replica_waits_until_enough_are_free(tmp_path):
    async def scenario():
        settings_ = settings(tmp_path, ("0", "1"))
        changes = []
        one_gpu = {"limits": {"nvidia.com/gpu": 1}}
        first = RevisionReplicas(
            revision(SERVER, one_gpu), "default", "demo", 2, settings_, lambda: changes.append(1)
        )
        second = RevisionReplicas(
            revision(SERVER, one_gpu, "demo-predictor-00002"), "default", "demo", 1, settings_, lambda: None
        )
        too_big = RevisionReplicas(
            revision(SERVER, {"limits": {"nvidia.com/gpu": 3}}, "demo-predictor-00003"),
            "default",
            "demo",
            1,
            settings_,
            lambda: None,
        )
        no_gpu = RevisionReplicas(
            revision(SERVER, {}, "demo-predictor-00004"), "default", "demo", 1, settings_, lambda: None
        )
        first.start()
        try:
            await until(lambda: len(first.addresses()) == 2, "two ready")
            assert {gpus_seen(tmp_path, "demo-predictor-00001", i) for i in (0, 1)} == {"'0'", "'1'"}

            second.start()
            waiting = await until(lambda: (s := second.state()).unschedulable and s, "the second waits")
            assert waiting.phase == "Pending"
            assert waiting.unschedulable == "needs 1 GPU (nvidia.com/gpu: 1), 0 of 2 free"
            assert gpus_seen(tmp_path, "demo-predictor-00002") is None

            too_big.start()
            await until(lambda: too_big.state().unschedulable, "the third waits")
            assert too_big.state().unschedulable == "needs 3 GPUs (nvidia.com/gpu: 3), and this machine has 2"

            no_gpu.start()  # needs no GPU, sees none, and waits for nothing
            await until(lambda: no_gpu.addresses(), "the one without GPUs ready")
            assert gpus_seen(tmp_path, "demo-predictor-00004") == "''"

            first.scale(1)
            first.stop_removed()  # its GPU goes to the waiting replica
            await until(lambda: second.addresses(), "the second ready")
            assert second.state().unschedulable is None
            kept = gpus_seen(tmp_path, "demo-predictor-00001", first.replicas[0].index)
            assert {kept, gpus_seen(tmp_path, "demo-predictor-00002")} == {"'0'", "'1'"}
        finally:
            await asyncio.gather(first.stop(), second.stop(), too_big.stop(), no_gpu.stop())
        assert settings_.gpus.free == 2  # every GPU back once they stopped, the waiting one included

    asyncio.run(scenario())
