"""`modelplane up`: the whole embedded platform in one process.

The store, the control-plane API, the reconciler (with the replica processes it supervises) and the
gateway's worker processes. The API and the reconciler share one uvloop event loop. SIGINT or SIGTERM
stops it all: the API stops, the gateway stops accepting and lets the responses under way finish,
then every replica is stopped gracefully.

SIGHUP restarts the control plane in place, and the data plane serves on: the platform hands its
gateway workers, zygotes and running replicas over (`handover`, kept open across `exec`) and runs its
program again in the same process, which takes them back. Requests keep flowing through the gateway
to the replicas all along; the API's listening socket and its clients' connections stay open too
(each handed over between two requests), so its clients wait rather than fail. The program run again is whatever is installed now: an upgrade takes effect this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from modelplane.control.autoscaling_settings import AutoscalerConfig
from modelplane.control.mesh_copies import SCALE_DOWN_DELAY
from modelplane.control.modelmesh import SCALE_TO_ZERO_GRACE_PERIOD
from modelplane.control.urls import GatewayAddress
from modelplane.local.api.env_sources import EnvSources
from modelplane.local.api.events import EventRecorder
from modelplane.local.api.server import ApiServer, bind, open_store
from modelplane.local.api.settings import DEFAULT_API_HOST, DEFAULT_API_PORT
from modelplane.local.api.storage_credentials import StorageCredentials
from modelplane.local.api.store import Store
from modelplane.local.api.store_faults import STORE_FAULTS
from modelplane.local.controllers.autoscaling import DEFAULT_TICK, HPA_SYNC_PERIOD, Autoscaling
from modelplane.local.controllers.reconciler import Reconciler
from modelplane.local.controllers.revision_log import RevisionLog
from modelplane.local.controllers.runtime_status import RuntimeStatusWriter
from modelplane.local.controllers.trained_models import TrainedModels
from modelplane.local.gateway.routes import DEFAULT_DOMAIN, RouteTable
from modelplane.local.gateway.server import GatewayConfig
from modelplane.local.gateway.workers import GatewayListenError, GatewayWorkers, default_workers
from modelplane.local.platform_metrics import platform_registry
from modelplane.local.replicas.gpus import GpuAllocator, discover_gpus
from modelplane.local.replicas.handover import UNCLAIMED_AFTER, HandedReplica, ReplicaHandover
from modelplane.local.replicas.inherited import InheritedChild, adopted_socket, kept_across_exec
from modelplane.local.replicas.log_rotation import rotate_logs_forever
from modelplane.local.replicas.supervisor import SupervisorSettings
from modelplane.local.replicas.zygotes import Zygotes
from modelplane.local.tls import TLSFiles
from modelplane.telemetry import tracing
from modelplane.telemetry.metrics_exposition import PlatformMetrics

logger = logging.getLogger("modelplane.platform")


@dataclass(frozen=True)
class PlatformConfig:
    home: Path
    api_port: int = DEFAULT_API_PORT
    gateway_port: int = 8080
    gateway_workers: int = field(default_factory=default_workers)  # processes serving the gateway's port
    domain: str = DEFAULT_DOMAIN
    host: str = DEFAULT_API_HOST
    scale_to_zero_grace_period: float = AutoscalerConfig.scale_to_zero_grace_period
    default_max_replicas: int = AutoscalerConfig.max_scale  # of components that set no maxReplicas
    modelmesh_copy_grace_period: float = SCALE_DOWN_DELAY  # before a ModelMesh model's extra copy goes
    # Before a ModelMesh pool no service uses stops (ModelMesh's scaleToZero.gracePeriodSeconds).
    modelmesh_scale_to_zero_grace_period: float = SCALE_TO_ZERO_GRACE_PERIOD
    activator_timeout: float = GatewayConfig.queue_timeout
    autoscaler_tick: float = DEFAULT_TICK
    hpa_sync_period: float = HPA_SYNC_PERIOD  # how often revisions scaled on cpu or memory are measured
    warm_starts: bool = True  # fork replicas of `modelplane serve` from a zygote (replicas/zygote.py)
    log_max_bytes: int = 64 * 1024 * 1024  # a log under <home>/logs above this is rotated
    log_backups: int = 3  # rotated copies kept per log
    auth_token: str | None = None  # required as `Authorization: Bearer` on the control-plane API
    tls: TLSFiles | None = None  # the control-plane API and the gateway serve TLS with these
    gateway_auth: bool = False  # the gateway requires `auth_token` too
    gpus: str | None = (
        None  # the GPUs to hand out ("0,1", "none"); None: found on the machine (replicas/gpus.py)
    )


@dataclass(frozen=True)
class PlatformAddresses:
    api_url: str
    gateway_url: str
    gateway_port: int


class PlatformError(Exception):
    """The platform cannot start (another one runs on the same home, a port is taken)."""


def _cannot_listen(what: str, host: str, port: int, flag: str, error: OSError) -> str:
    return f"cannot listen for the {what} on {host}:{port}: {error.strerror or error} (choose another with {flag})"


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """Holds `<home>/up.lock` while the platform runs: one `modelplane up` per home, as the store,
    the revisions and the replicas' logs are not meant to be shared. A new home is the user's alone
    (0700): the logs of the replicas and of the platform may hold what the models were sent."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (home / "up.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            raise PlatformError(f"another modelplane up (pid {owner}) is running with home {home}") from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _ApiServer(ApiServer):
    """The API without signal handlers of its own: the platform decides when everything stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Platform:
    def __init__(
        self,
        config: PlatformConfig,
        inherited: dict | None = None,
        restart_problem: Callable[[], str | None] | None = None,
    ) -> None:
        self.config = config
        # Why the program run again would not start (a token file emptied meanwhile...), or None. A
        # restart it would not survive is not begun: the data plane would end with it.
        self._restart_problem = restart_problem
        self.store: Store | None = None
        self.inherited = inherited  # what the platform's previous program handed over (SIGHUP)
        self.handover: dict | None = None  # what this one hands over, when it restarts in place
        self._restarting = False

    async def run(self, on_ready: Callable[[PlatformAddresses, Store], None] | None = None) -> None:
        """Runs until SIGINT or SIGTERM (or `stop()`); `on_ready` is called once everything listens."""
        with home_lock(self.config.home):
            await self._run(on_ready)

    async def _run(self, on_ready: Callable[[PlatformAddresses, Store], None] | None) -> None:
        config = self.config
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.restart_in_place)
        inherited = self.inherited or {}
        tracing.configure("modelplane-gateway")  # the gateway's spans, when OTEL_* says where
        try:
            store = self.store = open_store(config.home)
        except STORE_FAULTS as exc:
            raise PlatformError(str(exc)) from None
        if "api" in inherited:
            api_socket = adopted_socket(inherited["api"])
        else:
            try:
                api_socket = bind(config.host, config.api_port)
            except OSError as exc:
                store.close()
                raise PlatformError(
                    _cannot_listen("API", config.host, config.api_port, "--api-port", exc)
                ) from None
        connections = [adopted_socket(fd) for fd in inherited.get("api_connections", [])]
        api = _ApiServer(store, api_socket, config.auth_token, config.tls, connections)
        autoscaling = Autoscaling(
            AutoscalerConfig(
                scale_to_zero_grace_period=config.scale_to_zero_grace_period,
                max_scale=config.default_max_replicas,
            ),
            tick=config.autoscaler_tick,
            sync_period=config.hpa_sync_period,
        )
        demand: list[Callable[[str], bool]] = []  # ModelMesh's, once the reconciler is there

        def on_demand(revision: str) -> None:
            if not any(wake(revision) for wake in demand):
                autoscaling.wake_from_any_thread(revision)

        gateway_workers = GatewayWorkers(
            GatewayConfig(
                host=config.host,
                port=config.gateway_port,
                queue_timeout=config.activator_timeout,
                auth_token=config.auth_token if config.gateway_auth else None,
                tls=config.tls,
            ),
            config.gateway_workers,
            on_demand=on_demand,
            routes=RouteTable(starting=True),  # until the reconciler has loaded the stored services
        )
        try:
            gateway = gateway_workers.start(inherited.get("gateway"))
        except BaseException as exc:
            api.sock.close()
            store.close()
            if isinstance(exc, GatewayListenError):
                port = config.gateway_port
                raise PlatformError(
                    _cannot_listen("gateway", config.host, port, "--gateway-port", exc.error)
                ) from None
            raise
        zygote = Zygotes(config.home / "logs") if config.warm_starts else None
        if zygote is not None:
            await zygote.start(inherited=inherited.get("zygotes", []))
        inventory = await asyncio.to_thread(discover_gpus, config.gpus)
        logger.info("GPUs for replicas: %s", inventory.describe())
        events = EventRecorder(store)
        trained_models = TrainedModels(store, events)
        settings = SupervisorSettings(
            logs_dir=config.home / "logs",
            domain=config.domain,
            gateway_port=gateway.internal_port,  # the replicas call each other there
            zygote=zygote,
            prepare_repository=trained_models.prepare_folder,
            gpus=GpuAllocator(inventory),
            credentials=StorageCredentials(store),
            env_sources=EnvSources(store),
            volume_sources=EnvSources(store).files,
        )
        settings.handover.inherited = {
            handed.name: handed for handed in map(HandedReplica.from_json, inherited.get("replicas", []))
        }
        settings.handover.at_zero = set(inherited.get("at_zero", []))
        reconciler = Reconciler(
            store,
            gateway,
            settings,
            RevisionLog(config.home / "revisions"),
            autoscaling,
            events,
            GatewayAddress(gateway.port, gateway.scheme),
        )
        runtime_statuses = RuntimeStatusWriter(store, events)
        demand.append(reconciler.modelmesh.wake_from_any_thread)
        reconciler.modelmesh.copy_grace_period = config.modelmesh_copy_grace_period
        reconciler.modelmesh.scale_to_zero_grace_period = config.modelmesh_scale_to_zero_grace_period
        reconciler.on_replicas = trained_models.replicas_changed
        metrics = PlatformMetrics(platform_registry(gateway), reconciler.scrape_targets)
        api.app.metrics = metrics.exposition
        api_task = asyncio.create_task(api.run())
        log_task = asyncio.create_task(
            rotate_logs_forever(settings.logs_dir, config.log_max_bytes, config.log_backups)
        )
        unclaimed: asyncio.Task | None = None
        try:
            while not api.started and not api_task.done():
                await asyncio.sleep(0.01)
            if api_task.done():
                await api_task
            reconciler.start()
            runtime_statuses.start()
            trained_models.start()
            unclaimed = asyncio.create_task(_stop_unclaimed(settings.handover))
            addresses = PlatformAddresses(api.url, gateway.url, gateway.port)
            logger.info("control-plane API on %s, gateway on %s", api.url, gateway.url)
            if on_ready is not None:
                on_ready(addresses, store)
            await self._stopping.wait()
        finally:
            if self._restarting:
                logger.info("restarting in place: the gateway and the replicas serve on")
                kept_api = kept_across_exec(api.sock)
            else:
                logger.info("stopping: the API, the gateway (requests under way finish), then every replica")
            api.stop(hand_over=self._restarting)
            log_task.cancel()
            with contextlib.suppress(Exception):
                await api_task
            if self._restarting:
                self.handover = {
                    "api": kept_api,
                    "api_connections": api.handed_over,
                    "gateway": await asyncio.to_thread(gateway_workers.hand_over),
                    "replicas": [
                        handed.to_json()
                        for replica in list(settings.handover.live)
                        if (handed := replica.hand_over()) is not None
                    ],
                    "at_zero": autoscaling.at_zero(),
                }
            else:
                await asyncio.to_thread(gateway_workers.stop)
            if unclaimed is not None:
                unclaimed.cancel()
            await trained_models.close()
            await runtime_statuses.close()
            await reconciler.close()
            await metrics.close()
            if zygote is not None and self._restarting:
                self.handover["zygotes"] = await zygote.hand_over()
            elif zygote is not None:
                await zygote.close()
            store.close()
            await asyncio.to_thread(tracing.shutdown)
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            # Removing the handler restores SIGHUP's default, which ends the process: another SIGHUP
            # before the program runs again (a restart in place) must not take the data plane with it.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            logger.info("stopped")

    def stop(self) -> None:
        self._stopping.set()

    def restart_in_place(self) -> None:
        """Ends this run handing the data plane over (`handover`), for the program to run again."""
        problem = self._restart_problem() if self._restart_problem is not None else None
        if problem is not None:
            logger.error("not restarting in place (SIGHUP): %s; serving on as before", problem)
            return
        self._restarting = True
        self._stopping.set()


async def _stop_unclaimed(handover: ReplicaHandover) -> None:
    """Stops the replicas handed over that no revision took back (their service changed or went
    while the platform restarted)."""
    if not handover.inherited:
        return
    await asyncio.sleep(UNCLAIMED_AFTER)
    for handed in handover.unclaimed():
        logger.info(
            "stopping replica %s (pid %d): nothing took it back after the restart", handed.name, handed.pid
        )
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handed.pid, signal.SIGTERM)
        if not handed.forked:
            InheritedChild(handed.pid)  # reaps it once it exits
        if handed.batcher_pid is not None:
            InheritedChild(handed.batcher_pid).terminate()
