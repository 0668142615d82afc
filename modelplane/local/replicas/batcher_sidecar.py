"""KServe's batcher sidecar for a replica whose program does not batch itself: `modelplane batcher` on a port
of its own, in front of the replica's HTTP port, started with each start of the replica's process and
stopped when that process ends.

The gateway sends the replica's requests to the sidecar's port; the readiness probes still check the
program's. The sidecar is a child of the platform, not of the replica's process, so it is measured against
no memory limit of the replica's (in a pod it is a container of its own), and its output goes to the
replica's log.

In a service that asks to be scraped (its template's `batcher` has a `metricsPath`), the sidecar also
serves its own metrics with the program's (read from the program at that path) on a loopback port of
their own, at that path: the platform's `/metrics` scrapes the replica there (`metrics_url`), as
Prometheus scrapes a pod's batcher container on Kubernetes, and so has the batcher's and the program's
samples once each.
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


def batcher_argv(batcher: dict, port: int, upstream_port: int, metrics_port: int | None = None) -> list[str]:
    """The sidecar's command line: on `port`, in front of `upstream_port`, both on 127.0.0.1, and its
    metrics on `metrics_port` at the batcher's `metricsPath` where it has one; unset fields keep KServe's
    defaults (32 instances, 5000 ms, no timeout)."""
    argv = [sys.executable, "-m", "modelplane", "batcher", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--upstream", f"127.0.0.1:{upstream_port}"]
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port), "--metrics-path", batcher["metricsPath"]]
    return argv + [
        f"{flag}={batcher[field]}" for field, flag in _FLAGS.items() if batcher.get(field) is not None
    ]


class BatcherSidecar:
    def __init__(
        self,
        process: asyncio.subprocess.Process | InheritedChild,
        port: int,
        metrics_port: int | None,
        batcher: dict,
    ) -> None:
        self.process = process
        self.port = port
        self.metrics_port = metrics_port  # where it serves its metrics (only in a scraped service)
        self._metrics_path = batcher.get("metricsPath")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str | None:
        """Where it serves its metrics with the program's; None where it does not."""
        if self.metrics_port is None or self._metrics_path is None:
            return None
        return f"http://127.0.0.1:{self.metrics_port}{self._metrics_path}"

    @classmethod
    async def start(cls, batcher: dict, upstream_port: int, log_path: Path) -> BatcherSidecar:
        """Raises OSError if the process cannot be started."""
        port = free_loopback_port()
        metrics_port = _port_other_than(port) if batcher.get("metricsPath") else None
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *batcher_argv(batcher, port, upstream_port, metrics_port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=dying_with_this_process(),
            )
        return cls(process, port, metrics_port, batcher)

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


def _port_other_than(port: int) -> int:
    while (other := free_loopback_port()) == port:  # nothing listens on either yet
        pass
    return other
