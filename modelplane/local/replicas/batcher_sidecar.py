"""KServe's batcher sidecar for a replica whose program does not batch itself: `modelplane batcher` on a port
of its own, in front of the replica's HTTP port, started with each start of the replica's process and
stopped when that process ends.

The gateway sends the replica's requests to the sidecar's port; the readiness probes still check the
program's. The sidecar is a child of the platform, not of the replica's process, so it is measured against
no memory limit of the replica's (in a pod it is a container of its own), and its output goes to the
replica's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from modelplane.local.ports import free_loopback_port
from modelplane.local.replicas.inherited import InheritedChild
from modelplane.local.replicas.probe import accepts_connections
from modelplane.local.replicas.zygote import dying_with_this_process

STOP_GRACE = 5.0  # seconds the sidecar has to finish once its replica's process has ended

# A template's `batcher` fields, as `modelplane batcher`'s flags.
_FLAGS = {"maxBatchSize": "--max-batch-size", "maxLatency": "--max-latency", "timeout": "--timeout"}


def batcher_argv(batcher: dict, port: int, upstream_port: int) -> list[str]:
    """The sidecar's command line: on `port`, in front of `upstream_port`, both on 127.0.0.1; unset
    fields keep KServe's defaults (32 instances, 5000 ms, no timeout)."""
    argv = [sys.executable, "-m", "modelplane", "batcher", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--upstream", f"127.0.0.1:{upstream_port}"]
    return argv + [
        f"{flag}={batcher[field]}" for field, flag in _FLAGS.items() if batcher.get(field) is not None
    ]


class BatcherSidecar:
    def __init__(self, process: asyncio.subprocess.Process | InheritedChild, port: int) -> None:
        self.process = process
        self.port = port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, batcher: dict, upstream_port: int, log_path: Path) -> BatcherSidecar:
        """Raises OSError if the process cannot be started."""
        port = free_loopback_port()
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *batcher_argv(batcher, port, upstream_port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=dying_with_this_process(),
            )
        return cls(process, port)

    async def listening(self) -> bool:
        """Whether the sidecar takes connections now."""
        return self.process.returncode is None and await accepts_connections(self.port)

    async def stop(self) -> None:
        """SIGTERM (it lets the requests under way finish), then SIGKILL after `STOP_GRACE`."""
        process = self.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                self.kill()
                await process.wait()

    def kill(self) -> None:
        """SIGKILL, at once."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
