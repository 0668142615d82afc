"""One gateway worker process of `modelplane up` (`gateway/workers.py` starts them).

It serves the gateway on the listening sockets it inherits, which every worker shares (the kernel
hands each new connection to one of them), with the route table the platform sends it as it
changes. It counts its own requests: every `STATS_INTERVAL` it sends its counters per revision,
and its metrics when asked (and every `METRICS_INTERVAL`), for the platform to add up; a request that waits for a
revision with no replica tells the platform at once (the activator). It ends when told to, or when
the platform is gone (its end of the channel closes). A platform that restarts in place hands the
channel to its next process: told `handover`, the worker answers it and sends nothing more (but
the demands it holds) until the next process says `resume`, serving all along, and then takes the
token and certificate that process read from their files.

    python -m modelplane.local.gateway.worker CHANNEL_FD PUBLIC_FD [INTERNAL_FD]
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys

import uvloop
from prometheus_client import CollectorRegistry, generate_latest

from modelplane.local.gateway.channel import frame, read_message
from modelplane.local.gateway.server import Gateway, GatewaySockets
from modelplane.telemetry import tracing

STATS_INTERVAL = 0.1  # seconds
METRICS_INTERVAL = 1.0  # seconds


class _Worker:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.gateway: Gateway | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        # While the platform hands its channel over to its next process: what it must still hear.
        self.held: list[tuple] | None = None

    def send(self, message: tuple) -> None:
        if self.held is not None:
            if message[0] == "demand":  # counters and metrics are sent afresh anyway
                self.held.append(message)
        elif not self.writer.is_closing():
            self.writer.write(frame(message))

    def hold(self) -> None:
        """The platform is restarting: the last message before its next process reads the channel."""
        self.send(("handover",))
        self.held = []

    def resume(self) -> None:
        held, self.held = self.held or [], None
        for message in held:
            self.send(message)

    async def report(self) -> None:
        every = round(METRICS_INTERVAL / STATS_INTERVAL)
        tick = 0
        while True:
            self.send(("stats", self.gateway.revision_stats()))
            if tick % every == 0:
                self.send_metrics(0)
            tick += 1
            await asyncio.sleep(STATS_INTERVAL)

    def send_metrics(self, asked: int) -> None:
        """Its metrics, as `asked` for them (0: unasked)."""
        self.send(("metrics", asked, generate_latest(self.registry).decode()))

    def collect(self):
        """The gateway's metrics (this object is the worker registry's collector)."""
        return self.gateway.collect()


async def serve(channel: socket.socket, sockets: GatewaySockets) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=channel)
    start = await read_message(reader)
    if start is None or start[0] != "start":
        return
    _, config, routes = start
    worker = _Worker(writer)
    worker.gateway = Gateway(
        config, on_demand=lambda revision: worker.send(("demand", revision)), routes=routes
    )
    await worker.gateway.start(sockets)
    worker.send(("ready",))
    reporting = asyncio.create_task(worker.report())
    try:
        while (message := await read_message(reader)) is not None and message[0] != "stop":
            if message[0] == "routes":
                _, seq, table = message
                worker.gateway.update_routes(table)
                worker.send(("applied", seq))
            elif message[0] == "metrics?":
                worker.send_metrics(message[1])
            elif message[0] == "handover":
                worker.hold()
            elif message[0] == "resume":
                if len(message) > 1:  # the next program's config: its token and certificate, read again
                    worker.gateway.renew_credentials(message[1])
                worker.resume()
    finally:
        reporting.cancel()
        await worker.gateway.stop()
        writer.close()


def main(argv: list[str] | None = None) -> None:
    fds = [int(arg) for arg in (argv if argv is not None else sys.argv[1:])]
    channel = socket.socket(fileno=fds[0])
    public = socket.socket(fileno=fds[1])
    internal = socket.socket(fileno=fds[2]) if len(fds) > 2 else None
    # The platform decides when a worker stops. A worker is in a session of its own, out of reach of a
    # terminal's Ctrl-C or hang-up; these are ignored all the same, should one be sent to it (SIGHUP
    # means a restart of the control plane, which the workers serve through).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    tracing.configure("modelplane-gateway")
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(channel, GatewaySockets(public, internal)))


if __name__ == "__main__":
    main()
