"""The gateway as worker processes: `modelplane up --gateway-workers N`.

The platform binds the gateway's port (and, with a token or TLS, the replicas' loopback port) and
starts N processes that all serve on those sockets (`gateway/worker.py`), so the gateway uses as many
cores as it is given and no control-plane work stalls its traffic. Each worker gets the route table
as it changes (`update_routes` returns once every worker has it), counts its own requests, and reports
its counters (every 0.1 s) and metrics (when `collect` asks), which `revision_stats` and `collect`
add up for the autoscaler and the platform's `/metrics`. A request waiting in any worker for a revision with no replica calls
`on_demand` here. A worker that dies is started again with the current routes; the others serve on.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from modelplane.local.gateway.channel import frame, receive
from modelplane.local.gateway.config import GatewayConfig
from modelplane.local.gateway.metrics import REPLICAS_GAUGE
from modelplane.local.gateway.revisions import RevisionStats
from modelplane.local.gateway.routes import RouteTable
from modelplane.local.replicas.inherited import adopted_socket, kept_across_exec
from modelplane.protocol.listening import listening_socket

logger = logging.getLogger("modelplane.gateway")

APPLY_TIMEOUT = 10.0  # seconds a route change waits for each worker to have it
HANDOVER_TIMEOUT = 5.0  # seconds a worker has to answer `handover`
RESTART_PAUSE = 0.5  # seconds before a worker that died is started again
METRICS_WAIT = 2.0  # seconds a scrape waits for each worker's metrics


def default_workers() -> int:
    """Half the machine's cores, from 1 to 8: the other half serves the replicas."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


class _Worker:
    """One worker process and what it last reported."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: subprocess.Popen | _Inherited | None = None
        self.handed_over = False  # its channel went to the platform's next process
        self.channel: socket.socket | None = None
        self.send_lock = threading.Lock()
        self.ready = threading.Event()
        self.applied = 0  # the last route table it has in effect
        self.stats: dict[str, RevisionStats] = {}
        self.metrics = ""
        self.metrics_answered = 0  # the last ask for metrics it answered

    def send(self, message: tuple) -> None:
        channel = self.channel
        if channel is None:
            return
        try:
            with self.send_lock:
                channel.sendall(frame(message))
        except OSError:
            pass  # it is gone; its thread starts it again


class GatewayWorkers:
    """The gateway's worker processes, with the surface the platform uses of a `Gateway`."""

    def __init__(
        self,
        config: GatewayConfig,
        workers: int,
        on_demand: Callable[[str], None] | None = None,
        routes: RouteTable | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"the gateway needs at least one worker, got {workers}")
        self.config = config
        self._on_demand = on_demand
        self._routes = routes or RouteTable()
        self._seq = 0
        self._metrics_seq = 0
        self._lock = threading.Condition()
        self._workers = [_Worker(index) for index in range(workers)]
        self._threads: list[threading.Thread] = []
        self._stopping = False
        # What the workers that died had counted: the sums stay monotonic for the autoscaler.
        self._retired: dict[str, tuple[int, float]] = {}
        self._retired_metrics: dict[str, object] = {}  # cumulative families, by name
        self._public: socket.socket | None = None
        self._internal: socket.socket | None = None
        self._holding_starting = False  # workers handed over wait for a table that is not `starting`

    # ---- the platform's side ----

    def start(self, inherited: dict | None = None) -> GatewayWorkers:
        """Binds the ports and returns once every worker serves (raises if one cannot start).

        With `inherited` (what `hand_over` returned, in the platform's previous process) the ports are
        those sockets, and the workers handed over go on serving: they get no route table until the
        platform has one that is not `starting`, so they keep the last one meanwhile."""
        if inherited is None:
            try:
                self._public = _listening(self.config.host, self.config.port)
            except OSError as exc:
                raise GatewayListenError(exc) from None
            if self.config.auth_token is not None or self.config.tls is not None:
                self._internal = _listening("127.0.0.1", 0)
            adopted = {}
        else:
            self._public = adopted_socket(inherited["public"])
            if inherited["internal"] is not None:
                self._internal = adopted_socket(inherited["internal"])
            adopted = {entry["index"]: entry for entry in inherited["workers"]}
            self._holding_starting = bool(adopted)
        for worker in self._workers:
            entry = adopted.get(worker.index)
            if entry is not None:
                worker.process = _Inherited(entry["pid"])
                worker.channel = adopted_socket(entry["channel"])
                worker.ready.set()
            thread = threading.Thread(
                target=self._keep_running,
                args=(worker, entry is not None),
                name=f"gateway-worker-{worker.index}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        deadline = time.monotonic() + 60
        for worker in self._workers:
            if not worker.ready.wait(max(0.0, deadline - time.monotonic())):
                self.stop()
                raise RuntimeError(f"gateway worker {worker.index} did not start")
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
        for worker in self._workers:
            worker.send(("stop",))
        for thread in self._threads:
            thread.join(self.config.drain_timeout + 10)
        for sock in (self._public, self._internal):
            if sock is not None:
                sock.close()

    def hand_over(self) -> dict:
        """Leaves the workers serving for the platform's next process (which `start`s with what this
        returns): their channels and the listening sockets, as descriptors kept open across `exec`."""
        with self._lock:
            self._stopping = True
        for worker in self._workers:
            worker.send(("handover",))
        for thread in self._threads:
            thread.join(HANDOVER_TIMEOUT)
        workers = [
            {"index": w.index, "pid": w.process.pid, "channel": kept_across_exec(w.channel)}
            for w in self._workers
            if w.handed_over
        ]
        return {
            "public": kept_across_exec(self._public),
            "internal": kept_across_exec(self._internal) if self._internal is not None else None,
            "workers": workers,
        }

    @property
    def port(self) -> int:
        return self._public.getsockname()[1]

    @property
    def scheme(self) -> str:
        return self.config.scheme

    @property
    def url(self) -> str:
        return self.config.url(self.port)

    @property
    def internal_port(self) -> int:
        return (self._internal or self._public).getsockname()[1]

    def update_routes(self, table: RouteTable) -> None:
        """Sends the table to every worker; returns once each running one has it in effect."""
        with self._lock:
            if self._stopping:
                return  # stopped, or handed over: the workers take no more routes from here
            self._routes = table
            if self._holding_starting:
                if table.starting:
                    return  # the workers handed over serve with the table they have
                self._holding_starting = False
            self._seq += 1
            seq = self._seq
        running = [worker for worker in self._workers if worker.ready.is_set()]
        for worker in running:
            worker.send(("routes", seq, table))
        deadline = time.monotonic() + APPLY_TIMEOUT
        with self._lock:
            for worker in running:
                while worker.applied < seq and worker.ready.is_set() and not self._stopping:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        logger.warning("gateway worker %d has not applied the routes yet", worker.index)
                        break
                    self._lock.wait(left)

    def revision_stats(self) -> dict[str, RevisionStats]:
        """Every worker's counters per revision, added up."""
        with self._lock:
            reports = [worker.stats for worker in self._workers if worker.ready.is_set()]
            retired = dict(self._retired)
        summed: dict[str, RevisionStats] = {}
        for report in reports:
            for name, stats in report.items():
                seen = summed.get(name)
                summed[name] = stats if seen is None else _added(seen, stats)
        for name, (requests, seconds) in retired.items():
            stats = summed.get(name)
            if stats is not None:
                summed[name] = replace(
                    stats,
                    requests_total=stats.requests_total + requests,
                    concurrency_seconds=stats.concurrency_seconds + seconds,
                )
        return summed

    def worker_pids(self) -> list[int]:
        """The process ids of the workers serving now."""
        with self._lock:
            return [w.process.pid for w in self._workers if w.ready.is_set() and w.process is not None]

    def worker_stats(self) -> list[dict[str, RevisionStats]]:
        """Each serving worker's own counters, as it last reported them."""
        with self._lock:
            return [dict(worker.stats) for worker in self._workers if worker.ready.is_set()]

    def collect(self) -> Iterator:
        """The workers' metrics, each sample added up over the workers (counters and histograms
        with what the workers that died had counted)."""
        with self._lock:
            self._metrics_seq += 1
            seq = self._metrics_seq
        asked = [worker for worker in self._workers if worker.ready.is_set()]
        for worker in asked:
            worker.send(("metrics?", seq))
        deadline = time.monotonic() + METRICS_WAIT
        with self._lock:
            for worker in asked:
                while worker.metrics_answered < seq and worker.ready.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break  # what it sent last will do
                    self._lock.wait(left)
            texts = [worker.metrics for worker in self._workers if worker.metrics]
            retired = list(self._retired_metrics.values())
        merged = _MergedMetrics()
        for family in retired:
            merged.add(family)
        for text in texts:
            for family in text_string_to_metric_families(text):
                merged.add(family)
        yield from merged.families()

    # ---- each worker's thread ----

    def _keep_running(self, worker: _Worker, inherited: bool = False) -> None:
        if inherited:
            worker.send(("resume", self.config))
            self._follow(worker, worker.process, worker.channel, self._seq)
        while True:
            with self._lock:
                if self._stopping:
                    return
            try:
                self._run_once(worker)
            except Exception:
                logger.exception("gateway worker %d failed", worker.index)
            with self._lock:
                if self._stopping:
                    return
            time.sleep(RESTART_PAUSE)

    def _run_once(self, worker: _Worker) -> None:
        ours, theirs = socket.socketpair()
        fds = [theirs.fileno(), self._public.fileno()]
        if self._internal is not None:
            fds.append(self._internal.fileno())
        # No parent-death signal: it would follow this thread, which a restart in place ends. A worker
        # ends when its channel closes, which the kernel does when the platform's process ends. A
        # session of its own, as every replica has: a signal to `modelplane up`'s process group (`kill
        # -TERM -PGID`, Ctrl-C) is the platform's to act on, which stops the workers after draining them,
        # and does not end them at once to be taken for deaths.
        process = subprocess.Popen(
            [sys.executable, "-m", "modelplane.local.gateway.worker", *map(str, fds)],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        worker.process, worker.channel = process, ours
        with self._lock:
            routes, seq = self._routes, self._seq
        worker.send(("start", self.config, routes))
        self._follow(worker, process, ours, seq)

    def _follow(self, worker: _Worker, process, channel: socket.socket, started_with: int) -> None:
        """Takes the worker's messages until it ends (or is handed over)."""
        try:
            while (message := receive(channel)) is not None:
                if message[0] == "handover":
                    worker.handed_over = True
                    return
                self._received(worker, message, started_with)
        finally:
            if not worker.handed_over:
                self._ended(worker, process, channel)

    def _ended(self, worker: _Worker, process, channel: socket.socket) -> None:
        channel.close()
        code = process.wait()
        self._retire(worker)
        if not self._stopping:
            logger.warning(
                "gateway worker %d (pid %d) exited with code %d; starting it again",
                worker.index,
                process.pid,
                code,
            )

    def _received(self, worker: _Worker, message: tuple, started_with: int) -> None:
        kind = message[0]
        if kind == "stats":
            with self._lock:
                worker.stats = message[1]
        elif kind == "demand":
            if self._on_demand is not None:
                self._on_demand(message[1])
        elif kind == "applied":
            with self._lock:
                worker.applied = message[1]
                self._lock.notify_all()
        elif kind == "metrics":
            with self._lock:
                _, answered, worker.metrics = message
                worker.metrics_answered = max(worker.metrics_answered, answered)
                self._lock.notify_all()
        elif kind == "ready":
            with self._lock:
                worker.applied = started_with
                behind = self._seq > started_with
                routes, seq = self._routes, self._seq
            if behind:  # the routes changed while it started
                worker.send(("routes", seq, routes))
            worker.ready.set()

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            worker.ready.clear()
            for name, stats in worker.stats.items():
                requests, seconds = self._retired.get(name, (0, 0.0))
                self._retired[name] = (requests + stats.requests_total, seconds + stats.concurrency_seconds)
            if worker.metrics:
                merged = _MergedMetrics()
                for family in self._retired_metrics.values():
                    merged.add(family)
                for family in text_string_to_metric_families(worker.metrics):
                    if family.type in _CUMULATIVE:
                        merged.add(family)
                self._retired_metrics = {family.name: family for family in merged.families()}
            worker.stats, worker.metrics, worker.channel = {}, "", None
            self._lock.notify_all()


_CUMULATIVE = ("counter", "histogram", "summary")


# Gauges of what the workers share, not of their own work: merged by the largest, not added up.
_SHARED_GAUGES = frozenset((REPLICAS_GAUGE,))


class _MergedMetrics:
    """Metric families added up sample by sample (a `_created` time: the earliest; a gauge of what the
    workers share: the largest)."""

    def __init__(self) -> None:
        self._families: dict[str, object] = {}
        self._samples: dict[str, dict[tuple, object]] = {}

    def add(self, family) -> None:
        self._families.setdefault(family.name, family)
        kept = self._samples.setdefault(family.name, {})
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            seen = kept.get(key)
            if seen is None:
                kept[key] = sample
            elif sample.name.endswith("_created"):
                kept[key] = seen._replace(value=min(seen.value, sample.value))
            elif family.name in _SHARED_GAUGES:  # every worker sees the same replicas
                kept[key] = seen._replace(value=max(seen.value, sample.value))
            else:
                kept[key] = seen._replace(value=seen.value + sample.value)

    def families(self) -> list:
        found = []
        for name, family in self._families.items():
            merged = Metric(family.name, family.documentation, family.type, family.unit)
            merged.samples = list(self._samples[name].values())
            found.append(merged)
        return found


def _added(one: RevisionStats, other: RevisionStats) -> RevisionStats:
    return replace(
        one,
        replicas=max(one.replicas, other.replicas),
        in_flight=one.in_flight + other.in_flight,
        queued=one.queued + other.queued,
        requests_total=one.requests_total + other.requests_total,
        concurrency_seconds=one.concurrency_seconds + other.concurrency_seconds,
        taken_at=max(one.taken_at, other.taken_at),
        last_request_at=max(one.last_request_at, other.last_request_at),
        busy_replicas=one.busy_replicas | other.busy_replicas,
    )


class _Inherited:
    """A worker started by the platform's previous process (the same process id, before its `exec`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def wait(self) -> int:
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return -1
        return os.waitstatus_to_exitcode(status)


class GatewayListenError(Exception):
    """The gateway's port cannot be listened on (`error` says why)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _listening(host: str, port: int) -> socket.socket:
    sock = listening_socket(host, port, 1024)
    sock.setblocking(False)
    return sock
