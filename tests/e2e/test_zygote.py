"""The zygote: replicas of `modelplane serve` forked warm, each in its own session with its own log,
their exit codes reported, and a cold start whenever the zygote cannot fork."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from modelplane.local.zygote import Zygote
from tests.server.processes import free_port

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
        *(f"--http-port={http_port}", f"--grpc-port={free_port()}", *more),
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
            port = free_port()
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
                        return await client.post(
                            f"http://127.0.0.1:{port}/v1/models/iris:predict",
                            json={"instances": [[6.8, 2.8, 4.8, 1.4]]},
                        )
                    except httpx.HTTPError:
                        return None

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
            argv = serve_argv(tmp_path, free_port(), "--runtime=no-such-runtime")
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
                serve_argv(model_dir, free_port()), dict(os.environ), tmp_path / "r.log"
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
                await zygote.spawn(serve_argv(model_dir, free_port()), dict(os.environ), tmp_path / "x")
                is None
            )
        finally:
            await zygote.close()

    asyncio.run(scenario())
