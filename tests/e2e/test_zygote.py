"""The zygote: replicas of `modelplane serve` forked warm, each in its own session with its own log,
their exit codes reported, and a cold start whenever the zygote cannot fork."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelplane.local.ports import free_loopback_port
from modelplane.local.replicas.resources import thread_env
from modelplane.local.replicas.zygote import Zygote
from modelplane.local.replicas.zygotes import Zygotes

TIMEOUT = 120


def iris_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), folder / "model.joblib")
    return folder


def serve_argv(model_dir: Path, http_port: int, *more: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "modelplane", "serve", f"--model-dir={model_dir}", "--model-name=iris"),
        *(f"--http-port={http_port}", f"--grpc-port={free_loopback_port()}", *more),
    ]


async def until(check, what: str):
    async with asyncio.timeout(TIMEOUT):
        while not (result := await check()):
            await asyncio.sleep(0.05)
    assert result, what
    return result


def parent_and_session(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[3])


async def started(tmp_path: Path) -> Zygote:
    zygote = Zygote(tmp_path / "zygote.log")
    await zygote.start()

    async def ready() -> bool:
        return zygote.ready

    await until(ready, "the zygote's imports")
    return zygote


def test_a_replica_is_forked_warm_in_a_session_of_its_own_and_reports_its_exit(tmp_path):
    async def scenario():
        model_dir = iris_model(tmp_path / "iris")
        zygote = await started(tmp_path)
        try:
            port = free_loopback_port()
            log = tmp_path / "replica.log"
            env = {**os.environ, "PREDICT_PROBA": "true"}  # the replica's environment, not the zygote's
            replica = await zygote.spawn(serve_argv(model_dir, port), env, log)
            assert replica is not None

            async def own_session() -> bool:
                return parent_and_session(replica.pid) == (zygote._process.pid, replica.pid)

            await until(own_session, "the replica's session")

            async def named_as_its_command() -> bool:
                cmdline = Path(f"/proc/{replica.pid}/cmdline").read_bytes().replace(b"\0", b" ")
                return f"-m modelplane serve --model-dir={model_dir}".encode() in cmdline

            await until(named_as_its_command, "the replica's command line in ps")

            async with httpx.AsyncClient() as client:

                async def answers() -> httpx.Response | None:
                    try:
                        response = await client.post(
                            f"http://127.0.0.1:{port}/v1/models/iris:predict",
                            json={"instances": [[6.8, 2.8, 4.8, 1.4]]},
                        )
                    except httpx.HTTPError:
                        return None
                    # A 503 while the model loads (a loaded machine may be seen listening first).
                    return None if response.status_code == 503 else response

                response = await until(answers, "the forked replica to answer")
            (probabilities,) = response.json()["predictions"]
            assert len(probabilities) == 3 and max(probabilities) == probabilities[1]

            os.killpg(replica.pid, signal.SIGTERM)
            assert await asyncio.wait_for(replica.wait(), TIMEOUT) == 0
            assert replica.returncode == 0
            assert "serving iris on http://127.0.0.1:" in log.read_text()
        finally:
            await zygote.close()

    asyncio.run(scenario())


def test_a_replica_that_fails_reports_its_exit_code_and_its_error_in_its_log(tmp_path):
    async def scenario():
        zygote = await started(tmp_path)
        try:
            log = tmp_path / "replica.log"
            argv = serve_argv(tmp_path, free_loopback_port(), "--runtime=no-such-runtime")
            replica = await zygote.spawn(argv, dict(os.environ), log)
            assert await asyncio.wait_for(replica.wait(), TIMEOUT) == 2
            assert "no-such-runtime" in log.read_text()
        finally:
            await zygote.close()

    asyncio.run(scenario())


def test_other_commands_and_a_dead_zygote_start_cold(tmp_path):
    async def scenario():
        model_dir = iris_model(tmp_path / "iris")
        zygote = await started(tmp_path)
        try:
            python = [sys.executable, "-c", "print('not modelplane serve')"]
            assert await zygote.spawn(python, dict(os.environ), tmp_path / "other.log") is None

            replica = await zygote.spawn(
                serve_argv(model_dir, free_loopback_port()), dict(os.environ), tmp_path / "r.log"
            )
            zygote._process.kill()
            # The zygote's replicas go with it (their parent-death signal), and are reported gone.
            assert await asyncio.wait_for(replica.wait(), TIMEOUT) == -signal.SIGTERM

            async def gone() -> bool:
                try:
                    state = Path(f"/proc/{replica.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                except OSError:
                    return True
                return state in ("Z", "X")  # exited, waiting for whoever adopted it to reap it

            await until(gone, "the orphaned replica to exit")
            assert not zygote.ready
            assert (
                await zygote.spawn(
                    serve_argv(model_dir, free_loopback_port()), dict(os.environ), tmp_path / "x"
                )
                is None
            )
        finally:
            await zygote.close()

    asyncio.run(scenario())


def test_a_child_that_runs_only_once_its_zygote_is_gone_exits_at_once(tmp_path):
    """The zygote may die between its fork and the child's first step; the child then has another
    parent, no parent-death signal would ever come, and it must not become an orphaned replica."""
    marker = tmp_path / "ran"
    request = {
        "log": str(tmp_path / "child.log"),
        "env": {},
        "cwd": str(tmp_path),
        "argv": [sys.executable, "-m", "this_module_is_never_run", str(marker)],
    }
    # Here the child's parent is this test, not the process named as its zygote.
    program = (
        "import sys, json; from modelplane.local.replicas.zygote import _become_replica; "
        f"_become_replica(json.loads(sys.argv[1]), [], zygote={os.getpid() + 1})"
    )
    result = subprocess.run([sys.executable, "-c", program, json.dumps(request)], timeout=60, check=False)
    assert result.returncode == 1
    assert not (tmp_path / "child.log").exists()


def probe_argv(http_port: int) -> list[str]:
    return [
        sys.executable,
        *("-m", "modelplane", "serve", "--runtime=custom", "--model-name=probe"),
        f"--model-class={Path(__file__).with_name('resource_probe.py')}:ResourceProbe",
        *(f"--http-port={http_port}", f"--grpc-port={free_loopback_port()}"),
    ]


async def probe_report(port: int) -> dict:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:

        async def answers() -> httpx.Response | None:
            try:
                return await client.post(
                    f"http://127.0.0.1:{port}/v1/models/probe:predict", json={"instances": [[0]]}
                )
            except httpx.HTTPError:
                return None

        response = await until(answers, "the probe to answer")
    return response.json()["predictions"][0]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS and torch use no more threads than CPUs")
def test_each_thread_setting_forks_from_a_zygote_started_with_it(tmp_path):
    """The pools a zygote's libraries sized as they loaded are the forked replica's: a replica with
    2 threads must not come from the zygote of 1-thread replicas."""

    async def scenario():
        zygotes = Zygotes(tmp_path)
        await zygotes.start()  # the zygote of 1-thread replicas
        replicas = []
        try:
            for threads in (2, 1):
                port = free_loopback_port()
                env = {**os.environ, **thread_env(threads)}
                replica = await zygotes.spawn(probe_argv(port), env, tmp_path / f"probe-{threads}.log")
                assert replica is not None, "forked"
                replicas.append(replica)
                report = await probe_report(port)
                assert report["pid"] == replica.pid
                assert parent_and_session(replica.pid)[0] != os.getpid()  # a zygote's child, not ours
                assert report["openmp"] == [threads], report
                assert report["blas"] == [threads], report
                assert report["torch"] == threads
            assert (tmp_path / "zygote.log").exists() and (tmp_path / "zygote-threads-2.log").exists()
        finally:
            for replica in replicas:
                os.killpg(replica.pid, signal.SIGTERM)
                await asyncio.wait_for(replica.wait(), TIMEOUT)
            await zygotes.close()

    asyncio.run(scenario())
