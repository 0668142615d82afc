"""`ModelServer`: serves a list of models over REST and gRPC, in one process or several.

With `workers > 1` the parent binds the REST socket and starts that many worker processes that
share it (the kernel spreads connections between them); each worker binds the gRPC port with
SO_REUSEPORT. The parent restarts a worker that dies and passes SIGTERM/SIGINT on for a graceful
stop. Every worker loads its own copy of the models.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import prometheus_client
import uvloop
from prometheus_client import multiprocess
from prometheus_client.registry import Collector

from modelplane.protocol import http_server
from modelplane.protocol.listening import listening_socket
from modelplane.server import kserve_flags
from modelplane.server.connection_limits import ConnectionLimits
from modelplane.server.dataplane import DataPlane
from modelplane.server.kserve_flags import parser  # noqa: F401 - KServe programs build theirs on it
from modelplane.server.model import Model
from modelplane.server.payload_logging import ServerPayloadLog
from modelplane.server.predictor_config import PredictorConfig, check_predictor_protocol
from modelplane.server.repository import ModelFactory, ModelRepository, load_model, start_model
from modelplane.server.request_batching import BatchSettings
from modelplane.server.rest import DEFAULT_MAX_BODY, RESTServer
from modelplane.telemetry import tracing
from modelplane.telemetry.payload_delivery import PayloadDelivery
from modelplane.telemetry.payload_events import PayloadLogSpec
from modelplane.telemetry.payload_metrics import DeliveryCollector, SharedDeliveryMetrics
from modelplane.telemetry.payload_sinks import display_url

logger = logging.getLogger("modelplane.server")

GRACEFUL_STOP_SECONDS = 30
DELIVERY_METRICS_PERIOD = 1.0  # seconds between a worker's publications of its payload log's counts
_FROM_COMMAND_LINE: Any = object()


_UNUSED = {
    "max_threads": "gRPC runs on the event loop",
    "enable_docs_url": "there is no /docs",
    "enable_latency_logging": "the stages are timed on /metrics",
    "access_log_format": "there is no access log",
    "event_loop": "the server runs on uvloop",
}


def _warn_unused(given: dict[str, tuple[object, object]]) -> None:
    """KServe's settings that change nothing here: each set to other than its default is said."""
    for name, (value, default) in given.items():
        if value != default:
            logger.warning("ModelServer: %s=%r is accepted but not acted on: %s", name, value, _UNUSED[name])


class ModelServer:
    """Serves models over REST and gRPC. Constructed as KServe's is, with no arguments, it listens where
    KServe's flags on the command line say (`--http_port`, `--grpc_port`, `--workers`, `--enable_grpc`,
    `--max_asyncio_workers`, `--timeout-keep-alive`, `--predictor_host`...: `kserve_flags`), and takes
    KServe's keyword arguments: `enable_grpc`, `grace_period`, `max_asyncio_workers`,
    `timeout_keep_alive` and `predictor_config` do what they do there; `max_threads`, `enable_docs_url`,
    `enable_latency_logging`, `access_log_format` and `event_loop` are accepted, change nothing, and are
    warned about when set."""

    def __init__(
        self,
        http_port: int = _FROM_COMMAND_LINE,
        grpc_port: int | None = _FROM_COMMAND_LINE,
        workers: int = _FROM_COMMAND_LINE,
        host: str = "127.0.0.1",
        grpc_max_message_length: int = 64 * 1024 * 1024,
        max_body_size: int = DEFAULT_MAX_BODY,
        model_factory: ModelFactory | None = None,
        grace_seconds: float = GRACEFUL_STOP_SECONDS,
        multi_model: bool = False,
        batching: BatchSettings | None = None,
        limits: ConnectionLimits | None = None,
        payload_log: PayloadLogSpec | None = None,
        *,
        grpc_max_send_message_length: int | None = None,
        enable_grpc: bool | None = None,
        grace_period: float | None = None,
        max_asyncio_workers: int | None = None,
        timeout_keep_alive: float | None = None,
        predictor_config: PredictorConfig | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        max_threads: int | None = None,
        enable_docs_url: bool = False,
        enable_latency_logging: bool = True,
        access_log_format: str | None = None,
        event_loop: str = "auto",
    ):
        flags = kserve_flags.defaults()
        if _FROM_COMMAND_LINE in (http_port, grpc_port, workers):
            flags = kserve_flags.command_line()
        if flags.configure_logging and not (logging.getLogger().handlers or logger.handlers):
            # As KServe's: a program that set up no logging has the server's (its own `logger` prints).
            from modelplane.server.logging import configure_logging as configure_program_logging

            configure_program_logging(flags.log_config_file)
        if ssl_certfile or ssl_keyfile or flags.ssl_certfile or flags.ssl_keyfile:
            raise ValueError(
                "ModelServer does not serve TLS (ssl_certfile, ssl_keyfile): serve plain HTTP behind "
                "something that ends TLS, as KServe's ingress does"
            )
        _warn_unused(
            {
                "max_threads": (max_threads, None),
                "enable_docs_url": (enable_docs_url or flags.enable_docs_url, False),
                "enable_latency_logging": (enable_latency_logging and flags.enable_latency_logging, True),
                "access_log_format": (access_log_format or flags.access_log_format, None),
                "event_loop": (event_loop if event_loop != "auto" else flags.event_loop, "auto"),
            }
        )
        if enable_grpc is None:
            enable_grpc = flags.enable_grpc
        if grpc_port is _FROM_COMMAND_LINE:
            grpc_port = flags.grpc_port
        self.http_port = flags.http_port if http_port is _FROM_COMMAND_LINE else http_port
        self.grpc_port = grpc_port if enable_grpc else None
        self.workers = flags.workers if workers is _FROM_COMMAND_LINE else workers
        self.max_asyncio_workers = max_asyncio_workers or flags.max_asyncio_workers
        self.predictor_config = predictor_config or kserve_flags.predictor_config_of(flags)
        if grace_period is not None:
            grace_seconds = grace_period
        if timeout_keep_alive is None and limits is None:
            timeout_keep_alive = flags.timeout_keep_alive  # 65 s unless told, as ConnectionLimits'
        if timeout_keep_alive is not None:
            limits = dataclasses.replace(limits or ConnectionLimits(), idle_timeout=timeout_keep_alive)
        self.host = host
        # Of a request, and of a response (by default the same); KServe's flags, when given, set them.
        self.grpc_max_message_length = flags.grpc_max_receive_message_length or grpc_max_message_length
        self.grpc_max_send_message_length = (
            flags.grpc_max_send_message_length or grpc_max_send_message_length or grpc_max_message_length
        )
        for name in ("grpc_max_message_length", "grpc_max_send_message_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelServer: {name} must be at least 1 byte")
        self.max_body_size = max_body_size
        self.model_factory = model_factory
        self.grace_seconds = grace_seconds
        self.multi_model = multi_model  # ready with no model, loading them by name later
        self.batching = batching  # predict requests wait for others to share a model call with
        self.limits = limits or ConnectionLimits()
        self.payload_log = payload_log  # each request and answer to a payload log, as KServe's agent does

    def start(self, models: Sequence[Model]) -> None:
        """Serve `models` until SIGTERM or SIGINT. Blocks. Raises ListenError when a port cannot be
        listened on."""
        for model in models:
            if self.predictor_config is not None:
                self.predictor_config.apply_to(model)
            check_predictor_protocol(model)
        sock = _listening(self.host, self.http_port)
        grpc_sock = None if self.grpc_port is None else _listening(self.host, self.grpc_port)
        if self.workers <= 1:
            uvloop.run(self.serve(list(models), sock, grpc_sock))
            return
        self._run_workers(list(models), sock, grpc_sock)

    async def serve(
        self,
        models: list[Model],
        sock: socket.socket | None = None,
        grpc_sock: socket.socket | None = None,
        *,
        serve_once_loaded: bool = False,
    ) -> None:
        """Serves `models` until SIGTERM or SIGINT. `serve_once_loaded`: a worker started again beside
        others that serve takes no connection before its models are loaded (it would answer them "not
        ready" while the others could answer them)."""
        tracing.configure("modelplane-serve")  # OTEL_SERVICE_NAME, which the platform sets, wins
        if self.max_asyncio_workers:  # the threads the models' plain (not async) stages run on
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(self.max_asyncio_workers))
        repository = ModelRepository(self.model_factory, multi_model=self.multi_model)
        for model in models:
            repository.add(model)
        dataplane = DataPlane(repository, self.batching)
        if sock is None:
            sock = bind_socket(self.host, self.http_port)
        connection = self.limits
        shutdown = http_server.Shutdown(self.grace_seconds)
        delivery = PayloadDelivery() if self.payload_log is not None else None
        payload_log = None
        if delivery is not None:
            delivery.start()
            payload_log = ServerPayloadLog(self.payload_log, delivery.submit)
            published = self._publish_delivery_metrics(delivery)
            logger.info(
                "payload log: %s requests and answers to %s",
                self.payload_log.mode,
                display_url(self.payload_log.url),
            )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        load_task = asyncio.create_task(_load_all(repository))
        if serve_once_loaded:
            stopped = asyncio.ensure_future(stopping.wait())
            await asyncio.wait((load_task, stopped), return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()

        grpc_task = None
        if self.grpc_port is not None:
            from modelplane.protocol.http2 import server as http2_server
            from modelplane.server.grpc_server import OBSERVED_CALLS, inference_service

            service, grpc_limits = inference_service(
                dataplane, self.grpc_max_message_length, connection, self.grpc_max_send_message_length
            )
            if payload_log is not None:
                service = payload_log.calls(service, OBSERVED_CALLS)
                refusal = payload_log.too_large_calls(grpc_limits.too_large_response, OBSERVED_CALLS)
                grpc_limits = dataclasses.replace(grpc_limits, too_large_response=refusal)
            if grpc_sock is None:
                grpc_sock = bind_socket(self.host, self.grpc_port)
            grpc_service = http2_server.Http2Service(service, grpc_limits)
            grpc_task = asyncio.create_task(grpc_service.serve(grpc_sock, shutdown))
        rest = RESTServer(dataplane, payload_log, max_body_size=self.max_body_size)
        limits = http_server.ServerLimits(
            read_timeout=None,
            idle_timeout=connection.idle_timeout,
            max_body_size=self.max_body_size,
            too_large_response=rest.too_large,
            header_timeout=connection.header_timeout,
            body_timeout=connection.body_timeout,
            max_header_bytes=connection.max_header_bytes,
            max_header_count=connection.max_header_count,
            max_idle_connections=connection.max_idle_connections,
        )
        # gRPC clients reach the HTTP port too: a connection that opens with HTTP/2's preface is
        # served as one of the gRPC port's.
        http2 = grpc_service.take_over if grpc_task is not None else None
        rest_task = asyncio.create_task(http_server.serve(rest, sock, limits, shutdown, http2))
        logger.info(
            "serving %s on http://%s:%s%s",
            ", ".join(repository.names()) or "no models",
            self.host,
            sock.getsockname()[1],
            f" and grpc port {self.grpc_port}" if grpc_task else "",
        )
        if self.batching is not None:
            logger.info(
                "batching predict requests: up to %s rows a call, waiting up to %g ms%s",
                self.batching.max_batch_size,
                self.batching.max_latency * 1000,
                "" if self.batching.timeout is None else f", a call limited to {self.batching.timeout:g} s",
            )
        await stopping.wait()
        logger.info("stopping: draining requests in flight")
        shutdown.request()
        dataplane.stop_batching()
        await rest_task
        if grpc_task is not None:
            await grpc_task
        load_task.cancel()
        if delivery is not None:
            await delivery.stop()  # the last requests' events
            published.cancel()
            await asyncio.gather(published, return_exceptions=True)
        await repository.unload_all()
        await asyncio.to_thread(tracing.shutdown)  # the last spans, before the process exits

    @staticmethod
    def _publish_delivery_metrics(delivery: PayloadDelivery) -> asyncio.Task:
        """Puts the payload logger's counts on /metrics until the task is cancelled: read when scraped,
        or with several workers, published to the files the scrape of any worker sums."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return asyncio.create_task(
                _publish_every(SharedDeliveryMetrics(delivery), DELIVERY_METRICS_PERIOD)
            )
        return asyncio.create_task(_registered(DeliveryCollector(delivery)))

    def _run_workers(self, models: list[Model], sock: socket.socket, grpc_sock: socket.socket | None) -> None:
        context = multiprocessing.get_context("spawn")
        metrics_dir = tempfile.mkdtemp(prefix="modelplane-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        stop = False

        def request_stop(signum, _frame):
            nonlocal stop
            stop = True
            for process in processes:
                if process.is_alive():
                    os.kill(process.pid, signum)

        def spawn(again: bool = False) -> multiprocessing.Process:
            args = (self, models, sock, grpc_sock, again)
            process = context.Process(target=_worker_main, args=args, daemon=False)
            process.start()
            return process

        processes = [spawn() for _ in range(self.workers)]
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        backoff = 1.0
        while not stop:
            time.sleep(0.2)
            for index, process in enumerate(processes):
                if not process.is_alive() and not stop:
                    logger.error(
                        "worker %s exited with %s; restarting in %.0fs",
                        process.pid,
                        process.exitcode,
                        backoff,
                    )
                    multiprocess.mark_process_dead(process.pid)  # its gauges no longer count
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 30)
                    processes[index] = spawn(again=True)
        for process in processes:
            process.join()
        shutil.rmtree(metrics_dir, ignore_errors=True)  # the workers' metric files, summed while they ran


def _worker_main(
    server: ModelServer,
    models: list[Model],
    sock: socket.socket,
    grpc_sock: socket.socket | None,
    again: bool,
) -> None:
    configure_logging()
    uvloop.run(server.serve(models, sock, grpc_sock, serve_once_loaded=again))


async def _registered(collector: Collector) -> None:
    """Reads `collector` on /metrics until cancelled."""
    prometheus_client.REGISTRY.register(collector)
    try:
        await asyncio.Event().wait()
    finally:
        prometheus_client.REGISTRY.unregister(collector)


async def _publish_every(metrics: SharedDeliveryMetrics, period: float) -> None:
    """Publishes `metrics` every `period` seconds, and once more when cancelled."""
    try:
        while True:
            metrics.publish()
            await asyncio.sleep(period)
    finally:
        metrics.publish()


async def _load_all(repository: ModelRepository) -> None:
    for _name, served in repository.items():
        if not served.model.ready:
            await load_model(served)
        if served.model.ready:
            await start_model(served)
    repository.started = True


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket, inherited by the worker processes when there are several."""
    sock = listening_socket(host, port, 2048)
    sock.set_inheritable(True)
    return sock


class ListenError(Exception):
    """A port the server cannot listen on."""


def _listening(host: str, port: int) -> socket.socket:
    try:
        return bind_socket(host, port)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def configure_logging(level: str | None = None) -> None:
    level = level or os.environ.get("MODELPLANE_LOGLEVEL", "INFO")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
