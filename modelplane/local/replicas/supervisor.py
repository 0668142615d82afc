"""Replica processes: each revision runs its replicas as local processes, kept alive until stopped.

A replica first gets its model (the storage initializer: `modelplane.storage.fetch`, on a thread),
then its process starts with ports of its own and its output appended to a log file under
`<home>/logs/<namespace>/<service>/<component>/`. It is probed until ready; a process that exits is
started again after a back-off (1 s, doubling up to 30 s, back to 1 s once it has stayed up a while).
Stopping sends SIGTERM to the replica's process group, lets it finish the requests it holds, and sends
SIGKILL if it is still there after the grace period.

Resources (`replicas/resources.py`): a replica that asks for GPUs waits, `Pending`, until it has them,
and keeps them until it stops. A replica with a memory limit is measured every
`memory_check_interval` (1 s); over its limit, its process group gets SIGKILL, as the kernel's OOM
killer would, and it ends `OOMKilled` and restarts like a crash. A spike shorter than the interval
can go unseen.

Every change of a replica's state calls `on_change()`, so the reconciler can look again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import httpx

from modelplane.api.conditions import FAILED_TO_LOAD, LOADED, LOADING, MODEL_LOAD_FAILED, PENDING
from modelplane.api.validation.inference_service import common_parent
from modelplane.control import Failure, Revision, RevisionState, Termination
from modelplane.control.autoscaling_settings import format_seconds
from modelplane.control.progress_deadline import (
    DEFAULT_PROGRESS_DEADLINE,
    PROGRESS_DEADLINE_ANNOTATION,
    progress_deadline,
)
from modelplane.control.revision_templates import COMPONENTS
from modelplane.control.trained_models import is_multi_model_template
from modelplane.local.platform_metrics import REPLICA_EXITS, REPLICA_RESTARTS, REPLICA_STARTS
from modelplane.local.ports import free_loopback_port
from modelplane.local.replicas.batcher_sidecar import BatcherSidecar
from modelplane.local.replicas.command import (
    ModelMount,
    ReplicaPorts,
    fetch_environment,
    replica_launch,
    runs_modelplane_server,
    speaks_modelplane_serve,
    unmounted_path_hint,
)
from modelplane.local.replicas.container_env import (
    EnvError,
    Lookup,
    Pod,
    container_env,
    redacted,
    secret_values,
)
from modelplane.local.replicas.container_probes import (
    Probes,
    ProbeSpec,
    Readiness,
    guard_liveness,
    replica_probes,
)
from modelplane.local.replicas.crashes import CrashedReplicas
from modelplane.local.replicas.fetch_credentials import CredentialSource, FetchCredentials
from modelplane.local.replicas.gpus import GpuAllocator, GpuInventory
from modelplane.local.replicas.handover import HandedReplica, ReplicaHandover, template_digest
from modelplane.local.replicas.inherited import InheritedChild
from modelplane.local.replicas.lifecycle import MIN_GRACE_AFTER_HOOK, Hook, Lifecycle, replica_lifecycle
from modelplane.local.replicas.listening import PortCheck, port_given_in
from modelplane.local.replicas.memory_watch import Process, can_measure, enforce_memory_limit
from modelplane.local.replicas.probe import ProbeResult, accepts_connections, probe
from modelplane.local.replicas.resources import replica_resources
from modelplane.local.replicas.volumes import FileLookup, ReplicaVolumes, replica_volumes
from modelplane.local.replicas.zygote import ForkedProcess, Zygote, dying_with_this_process
from modelplane.local.replicas.zygotes import Zygotes
from modelplane.telemetry.metrics_exposition import ScrapeTarget

logger = logging.getLogger("modelplane.supervisor")

OOM_KILLED = "OOMKilled"
SESSION_PAUSE = 0.2  # seconds a replica forked a moment ago is given to begin its session (`_terminate`)
OOM_EXIT_CODE = 137  # what Kubernetes reports for a container the OOM killer ended (128 + SIGKILL)


@dataclass(frozen=True)
class SupervisorSettings:
    logs_dir: Path
    domain: str = "localhost"
    gateway_port: int = 8080
    probe_interval: float = 0.05  # while a replica loads: a warm one is ready in a fraction of a second
    ready_probe_interval: float = 2.0
    # Once ready, another program than modelplane's servers gets its HTTP readiness probe this often (the
    # kubelet's default periodSeconds), and a TCP connect every `ready_probe_interval` in between: KServe's
    # SDK logs three lines for each HTTP request (probe.py).
    ready_http_probe_interval: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    stable_after: float = 30.0  # a replica up this long starts its back-off afresh
    stop_grace: float = 20.0
    # How long a replica may take to get ready for the first time before its revision fails (a
    # template's `progressDeadline` wins): Knative's and a Deployment's default, 600 s.
    progress_deadline: float = DEFAULT_PROGRESS_DEADLINE
    repositories_dir: Path | None = None  # multi-model replicas' folders (default: next to logs_dir)
    # Fills a multi-model replica's folder with its TrainedModels before the replica starts.
    prepare_repository: Callable[[Replica], Awaitable[None]] | None = None
    # The warm processes replicas of `modelplane serve` are forked from (None: every replica starts cold).
    zygote: Zygotes | Zygote | None = None
    memory_check_interval: float = 1.0  # how often a replica's memory is held against its limit
    gpus: GpuAllocator = field(default_factory=lambda: GpuAllocator(GpuInventory((), "none")))
    # Where a model's storage credentials come from: the storage-config Secrets, the ServiceAccounts
    # (None: the folder of storage configs and the environment of modelplane up alone).
    credentials: CredentialSource | None = None
    # The ConfigMaps and Secrets a container's `envFrom` and `valueFrom` read (None: there are none).
    env_sources: Lookup | None = None
    # The same as the files of a volume (None: there are none).
    volume_sources: FileLookup | None = None
    # The replicas running now, and those a restart in place handed over (replicas/handover.py).
    handover: ReplicaHandover = field(default_factory=ReplicaHandover)
    # The replicas that died lately, for the gateway's routes (replicas/crashes.py).
    crashed: CrashedReplicas = field(default_factory=CrashedReplicas)


def _no_env_sources(kind: str, namespace: str, name: str) -> None:
    return None


def replica_log_dir(logs_dir: Path, namespace: str, service: str, component: str) -> Path:
    return logs_dir / namespace / service / component


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Replica:
    """One process of a revision: fetched, started, probed, restarted, stopped."""

    def __init__(
        self,
        revision: Revision,
        index: int,
        log_path: Path,
        settings: SupervisorSettings,
        on_change: Callable[[], None],
    ) -> None:
        self.revision = revision
        self.index = index
        self.log_path = log_path
        self.settings = settings
        self.phase = PENDING
        self.address: str | None = None
        self.grpc_address: str | None = None  # where it takes gRPC (the port it was given for it)
        self.failure: Failure | None = None
        self.restarts = 0
        self._volumes_made = False  # an emptyDir is emptied when the replica is made, not at a restart
        self.resources = replica_resources(revision.template)
        self.unschedulable: str | None = None  # why it waits for GPUs
        self.not_ready_reason: str | None = None  # why it is not ready, where the platform can tell
        self.last_termination: Termination | None = None
        self._on_change = on_change
        self._created_at = time.monotonic()  # when its progress deadline began
        self._ever_ready = False
        self._process: asyncio.subprocess.Process | ForkedProcess | InheritedChild | None = None
        self._ports: ReplicaPorts | None = None
        self._batcher: BatcherSidecar | None = (
            None  # in front of its process, where its template has a batcher
        )
        self._port_given_in: tuple[str, ...] = ("$PORT",)  # how its process was told its HTTP port
        self._gpus: tuple[str, ...] = ()
        self._env: dict[str, str] | None = None  # the process's own variables (on top of the platform's)
        self._mounts: tuple[ModelMount, ...] = ()  # the container paths its arguments and env had rewritten
        self._lifecycle = Lifecycle()
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._log_unwritable = False  # its last note could not be written (said once until one can)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.returncode is None else None

    def start(self) -> None:
        # One the platform's previous program handed over is taken back at once: it serves in the
        # very first routes.
        handed = self._take_back(self.settings.handover.take(self.name, self.revision.template))
        self._task = asyncio.create_task(self._run(handed), name=f"replica {self.revision.name}-{self.index}")
        live = self.settings.handover.live
        live.add(self)
        self._task.add_done_callback(lambda _: live.discard(self))

    def hand_over(self) -> HandedReplica | None:
        """Lets go of the replica's process, which goes on running for the platform's next program;
        what that program needs to take it back (None: there is no process to hand over)."""
        process, ports = self._process, self._ports
        if process is None or process.returncode is not None or ports is None or self._task is None:
            return None
        self._task.cancel()
        batcher, self._batcher = self._batcher, None  # it serves on, for the program run next
        return HandedReplica(
            name=self.name,
            template=template_digest(self.revision.template),
            pid=process.pid,
            forked=isinstance(process, ForkedProcess),
            http_port=ports.http,
            grpc_port=ports.grpc,
            gpus=self._gpus,
            loaded=self.phase == LOADED,
            batcher_pid=batcher.process.pid if batcher is not None else None,
            batcher_port=batcher.port if batcher is not None else None,
            batcher_metrics_port=batcher.metrics_port if batcher is not None else None,
        )

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; returns once the replica is gone (whatever
        it was doing: fetching, starting, running or waiting to restart)."""
        self._stopping.set()
        task = self._task
        while task is not None and not task.done():
            process = self._process
            if process is not None and process.returncode is None:
                await self._terminate(process)
            else:
                await asyncio.wait({task}, timeout=0.05)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _terminate(self, process: Process, grace: float | None = None) -> None:
        """The `preStop` hook, the stop signal, and SIGKILL once the grace period (the replica's unless
        given) is over (replicas/lifecycle.py)."""
        lifecycle = self._lifecycle
        grace = self._grace() if grace is None else grace
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        hook = lifecycle.pre_stop
        if hook is not None and process.returncode is None:
            self._note(f"preStop hook: {hook.describe()}")
            try:
                why = await asyncio.wait_for(hook.run(grace), grace)
            except TimeoutError:
                why = f"it did not end within the grace period of {grace:g}s"
            if why is not None:
                self._note(f"FailedPreStopHook: {why}")
                logger.warning("%s: the preStop hook failed: %s", self.label, why)
        if not _signal_group(process.pid, lifecycle.stop_signal):
            # Forked before its session began, it may still have had the zygote's handler for the
            # signal, which its own code never runs: once it has a session, the group is told again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), SESSION_PAUSE)
            if process.returncode is None:
                _signal_group(process.pid, lifecycle.stop_signal)
        left = max(deadline - loop.time(), MIN_GRACE_AFTER_HOOK if hook is not None else 0.0)
        try:
            await asyncio.wait_for(process.wait(), left)
        except TimeoutError:
            logger.warning("%s did not stop within %ss: killing it", self.label, f"{grace:g}")
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()

    def _grace(self) -> float:
        grace = self._lifecycle.grace
        return self.settings.stop_grace if grace is None else grace

    @property
    def model_repository(self) -> Path | None:
        """A multi-model replica's own model folder, which TrainedModels are fetched into; it is kept
        across restarts, so a restarted replica finds its models there."""
        if not is_multi_model_template(self.revision.template):
            return None
        return _repositories(self.settings) / self.log_path.relative_to(self.settings.logs_dir).with_suffix(
            ""
        )

    @property
    def label(self) -> str:
        return f"replica {self.index} of {self.revision.name}"

    @property
    def name(self) -> str:
        """The replica's name, as a pod's: `<revision>-<index>` (its log is `<name>.log`)."""
        return f"{self.revision.name}-{self.index}"

    def _tracing_env(self) -> dict[str, str]:
        """Who the replica is in its spans (when tracing is on): `<service>-<component>`, and its
        namespace and replica as resource attributes. A container's own OTEL_* variables win."""
        namespace, service, component = self.log_path.relative_to(self.settings.logs_dir).parts[:3]
        attributes = f"k8s.namespace.name={namespace},service.instance.id={self.revision.name}-{self.index}"
        inherited = os.environ.get("OTEL_RESOURCE_ATTRIBUTES")
        return {
            "OTEL_SERVICE_NAME": f"{service}-{component}",
            "OTEL_RESOURCE_ATTRIBUTES": f"{attributes},{inherited}" if inherited else attributes,
        }

    @property
    def namespace(self) -> str:
        """The replica's namespace: its log lives under `<logs>/<namespace>/...`."""
        return self.log_path.relative_to(self.settings.logs_dir).parts[0]

    def _metric_labels(self) -> tuple[str, str]:
        """(namespace, revision)."""
        return self.namespace, self.revision.name

    def _set(self, phase: str, *, address: str | None = None, failure: Failure | None = None) -> None:
        if failure is not None and self.failure is not None and _same_failure(failure, self.failure):
            failure = self.failure  # the same failure again keeps its first time
        if (phase, address, failure) == (self.phase, self.address, self.failure):
            return
        if phase == FAILED_TO_LOAD and failure is not None and failure is not self.failure:
            logger.warning("%s failed to load: %s", self.label, failure.message)
        self.phase, self.address, self.failure = phase, address, failure
        self._on_change()

    async def _run(self, handed: HandedReplica | None) -> None:
        gpus = handed.gpus if handed is not None else await self._take_gpus()
        self._gpus = gpus or ()
        try:
            if gpus is not None:
                await self._run_until_stopped(gpus, taken_back=handed is not None)
        finally:
            self.settings.gpus.give_back(gpus or ())
        self._set(PENDING)

    async def _take_gpus(self) -> tuple[str, ...] | None:
        """The GPUs the replica asks for, once they are free; None if it is stopped while it waits."""
        gpus = await self.settings.gpus.acquire(self.resources.gpus, self._stopping, self._wait_for_gpus)
        self.unschedulable = None
        if gpus:
            self._note(f"given GPU {','.join(gpus)}")
        return gpus

    def _wait_for_gpus(self, why: str) -> None:
        self._note(f"waiting: {why}")
        logger.warning("%s cannot start: %s", self.label, why)
        self.unschedulable = why
        self._on_change()

    async def _run_until_stopped(self, gpus: tuple[str, ...], taken_back: bool = False) -> None:
        backoff = self.settings.backoff_initial
        template = self.revision.template
        async with httpx.AsyncClient(timeout=2.0) as client:
            if taken_back:
                await self._supervise(client, template)
            while not self._stopping.is_set():
                if self.phase != FAILED_TO_LOAD:  # a crash loop stays FailedToLoad until ready
                    self._set(LOADING)
                try:
                    model_dir = await self._fetch_model()
                except Exception as exc:  # noqa: BLE001 - any failure of the initializer is reported
                    if self._stopping.is_set():
                        break
                    self._note(f"the storage initializer failed: {exc}")
                    self._set(FAILED_TO_LOAD, failure=self._failure(str(exc), location="storage-initializer"))
                else:
                    if self._stopping.is_set():  # stopped while its TrainedModels were fetched
                        break
                    started = time.monotonic()
                    await self._run_process(client, template, model_dir, gpus)
                    if self._stopping.is_set():
                        break
                    if time.monotonic() - started > self.settings.stable_after:
                        backoff = self.settings.backoff_initial
                self.restarts += 1
                REPLICA_RESTARTS.labels(*self._metric_labels()).inc()
                self._note(f"restarting in {backoff:.0f}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, self.settings.backoff_max)

    async def _fetch_model(self) -> ModelMount | Path | None:
        """The storage initializer. A local folder or pvc claim is used where it is; anything else is
        fetched by `modelplane storage fetch` in a child process (which `stop()` can end, and whose
        progress goes to the replica's log), so that a download never holds up the platform's process."""
        template = self.revision.template
        if template.get("storageUris"):
            return await self._fetch_models(template["storageUris"])
        storage = template.get("storage")
        if not storage:
            folder = self.model_repository
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
                if self.settings.prepare_repository is not None:
                    await _until_stopped(self.settings.prepare_repository(self), self._stopping)
            return folder
        return await self._fetch(storage.get("storageUri"), storage.get("storage"))

    async def _fetch_models(self, entries: list[dict]) -> ModelMount:
        """`storageUris`: each model fetched, and laid out as their mount paths say under one folder of
        the replica's own (`<home>/mounts/...`), which stands for the paths' common parent."""
        folders = [await self._fetch(entry["uri"], None) for entry in entries]
        paths = [entry["mountPath"] for entry in entries]
        if len(entries) == 1:
            return ModelMount(folders[0], paths[0])
        parent = common_parent(paths)
        root = self.settings.logs_dir.parent / "mounts" / self.log_path.relative_to(self.settings.logs_dir)
        root = root.with_suffix("")
        shutil.rmtree(root, ignore_errors=True)
        for folder, path in zip(folders, paths, strict=True):
            link = root / PurePosixPath(path).relative_to(parent)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(folder, target_is_directory=True)
        return ModelMount(root, parent)

    async def _fetch(self, uri: str | None, spec: dict | None) -> Path:
        from modelplane.storage import fetch, resolve

        credentials = self.settings.credentials
        namespace = self.namespace
        names = self.revision.template.get("credentials") or {}
        store = None
        if credentials is not None and spec:
            store = credentials.for_namespace(namespace, names.get("storageSecretName"))
        source = resolve(uri, spec, store=store)
        if source.location.kind in ("local", "pvc"):
            return await asyncio.to_thread(fetch, source)
        account = FetchCredentials()
        if credentials is not None and not spec:
            account = credentials.of_service_account(
                namespace,
                names.get("serviceAccountName"),
                names.get("storageSecretName"),
                names.get("imagePullSecrets"),
            )
        for note in account.notes:
            self._note(f"storage initializer: {note}")
        self._note(f"storage initializer: fetching {source.location.display}")
        with self.log_path.open("ab") as log, account.materialized() as account_env:
            self._process = await asyncio.create_subprocess_exec(
                *_modelplane_command("storage", "fetch", source.uri),
                env=fetch_environment(source, account_env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                preexec_fn=dying_with_this_process(),
            )
            output, _ = await self._process.communicate()
        if self._process.returncode != 0:
            raise RuntimeError(failure_line(self.log_path) or f"exit code {self._process.returncode}")
        return Path(output.decode().strip().splitlines()[-1])

    async def _run_process(
        self,
        client: httpx.AsyncClient,
        template: dict,
        model_dir: ModelMount | Path | None,
        gpus: tuple[str, ...],
    ) -> None:
        try:
            # The ConfigMaps and Secrets read once for this start: for the environment, and for the log
            lookup = functools.cache(self.settings.env_sources or _no_env_sources)
            declared_env = self._declared_env(template, lookup)
            volumes = self._volumes(template, {**template["env"], **(declared_env or {})})
        except EnvError as exc:
            message = f"{EnvError.reason}: {exc}"
            self._note(f"cannot start: {message}")
            self._set(FAILED_TO_LOAD, failure=self._failure(message))
            return
        ports = ReplicaPorts(free_loopback_port(), free_loopback_port())
        self.grpc_address = f"127.0.0.1:{ports.grpc}"
        launch = replica_launch(
            template,
            ports,
            model_dir,
            domain=self.settings.domain,
            gateway_port=self.settings.gateway_port,
            gpus=gpus,
            declared_env=declared_env,
            volumes=volumes.mounts,
            knative_revision=self._knative_revision(template),
            namespace=self.namespace,
        )
        for note in (*launch.notes, *volumes.notes):
            self._note(note)
        if self._stopping.is_set():
            return
        self._env = launch.env
        self._mounts = launch.mounts
        self._port_given_in = port_given_in(launch.argv, ports.http)
        if template.get("workingDir") and launch.cwd is None:
            self._note(
                f"workingDir {template['workingDir']} is not a folder on this machine: starting in {os.getcwd()}"
            )
        self._note(f"starting: {redacted(' '.join(launch.argv), self._secret_values(template, lookup))}")
        env = {**os.environ, **self._tracing_env(), **launch.env}
        zygote = self.settings.zygote
        try:
            forked = await zygote.spawn(launch.argv, env, self.log_path, launch.cwd) if zygote else None
            if forked is not None:
                self._process = forked
            else:
                with self.log_path.open("ab") as log:
                    self._process = await asyncio.create_subprocess_exec(
                        *launch.argv,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=log,
                        stderr=asyncio.subprocess.STDOUT,
                        env=env,
                        cwd=launch.cwd,
                        start_new_session=True,
                        preexec_fn=dying_with_this_process(),
                    )
        except OSError as exc:  # a program that is not there, or not executable
            message = f"cannot run {launch.argv[0]}: {exc.strerror or exc}"
            self._note(message)
            self._set(FAILED_TO_LOAD, failure=self._failure(message))
            return
        REPLICA_STARTS.labels(*self._metric_labels()).inc()
        how = "forked warm, " if isinstance(self._process, ForkedProcess) else ""
        logger.info("%s started (%spid %s, port %s)", self.label, how, self._process.pid, ports.http)
        self._ports = ports
        await self._supervise(client, template)

    def _declared_env(self, template: dict, lookup: Lookup) -> dict[str, str] | None:
        """The variables the container's `envFrom` and `env` make, read now through `lookup` (None: its
        literal values are all it has)."""
        spec = template.get("envSpec")
        if spec is None:
            return None
        return container_env(
            spec["envFrom"], spec["env"], self._pod(spec["pod"]), template.get("resources") or {}, lookup
        )

    def _volumes(self, template: dict, variables: dict[str, str]) -> ReplicaVolumes:
        """The folders of the container's volumeMounts, made now (replicas/volumes.py)."""
        spec = template.get("volumes")
        if spec is None:
            return ReplicaVolumes()
        from modelplane.storage.paths import pvc_dir  # the storage package is imported when first needed

        namespace = self.namespace
        root = self.settings.logs_dir.parent / "volumes"
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)  # a Secret's files in it are this user's alone, whatever their own mode
        folder = root / self.log_path.relative_to(self.settings.logs_dir)
        lookup = self.settings.volume_sources or _no_env_sources
        made = replica_volumes(
            spec,
            namespace,
            folder.with_suffix(""),
            lookup,
            pvc_dir(),
            variables,
            fresh=not self._volumes_made,
            pod=self._pod(spec["pod"]) if spec.get("pod") else None,
            resources=template.get("resources") or {},
        )
        self._volumes_made = True
        return made

    def _pod(self, facts: dict) -> Pod:
        """The pod the downward API tells of, from a template's facts of it and this replica's name."""
        return Pod(
            self.name, facts["namespace"], facts["labels"], facts["annotations"], facts["serviceAccountName"]
        )

    def _secret_values(self, template: dict, lookup: Lookup) -> set[str]:
        spec = template.get("envSpec")
        if spec is None:
            return set()
        return secret_values(spec["envFrom"], spec["env"], spec["pod"]["namespace"], lookup)

    def _take_back(self, handed: HandedReplica | None) -> HandedReplica | None:
        """The process the platform's previous program handed over, now this replica's again (None:
        there is none, or it is gone, or its GPUs are not free)."""
        if handed is None:
            return None
        zygote = self.settings.zygote
        if handed.forked:
            process = zygote.forked(handed.pid) if isinstance(zygote, Zygotes) else None
        else:
            process = InheritedChild(handed.pid)
        if process is None or process.returncode is not None:
            self._note(f"the process handed over (pid {handed.pid}) is gone: starting it again")
            return None
        if self.settings.gpus.claim(handed.gpus) is None:
            self._note(f"the GPUs of the process handed over (pid {handed.pid}) are taken: starting it again")
            _signal_group(handed.pid, signal.SIGKILL)
            return None
        self._process = process
        self._ports = ReplicaPorts(handed.http_port, handed.grpc_port)
        self.grpc_address = f"127.0.0.1:{handed.grpc_port}"
        self._note(f"taken back after a restart of the platform (pid {handed.pid})")
        if handed.batcher_pid is not None:
            sidecar = InheritedChild(handed.batcher_pid)
            if sidecar.returncode is None:  # else `_supervise` starts another
                # Started from this template's `batcher` (the handover checked its digest).
                batcher, metrics_port = self.revision.template["batcher"], handed.batcher_metrics_port
                self._batcher = BatcherSidecar(sidecar, handed.batcher_port, metrics_port, batcher)
        if handed.loaded and (self._batcher is not None or not self.revision.template.get("batcher")):
            self._ever_ready = True
            self._set(LOADED, address=self._routed_address(self._ports))
        return handed

    async def _supervise(self, client: httpx.AsyncClient, template: dict) -> None:
        """Watches the running process until it exits, and says why it did."""
        batcher = self.revision.template.get("batcher")
        if batcher is None:
            await self._supervise_process(client, template)
            return
        if self._batcher is None:  # else it was handed over with the replica, and serves on
            try:
                self._batcher = await BatcherSidecar.start(batcher, self._ports.http, self.log_path)
            except OSError as exc:
                self._note(f"cannot start the batcher sidecar: {exc.strerror or exc}: stopping the replica")
                await self._terminate(self._process)
                return
            self._note(
                f"batcher sidecar started (pid {self._batcher.process.pid}, port {self._batcher.port})"
            )
        guard = asyncio.create_task(self._guard_batcher(self._process, self._batcher))
        try:
            await self._supervise_process(client, template)
        finally:
            guard.cancel()
            sidecar, self._batcher = self._batcher, None
            if sidecar is not None:  # else the replica was handed over, and its sidecar with it
                await sidecar.stop()
                self._note(f"batcher sidecar stopped (exit code {sidecar.process.returncode})")

    async def _guard_batcher(self, process: Process, sidecar: BatcherSidecar) -> None:
        """A sidecar that ends on its own takes its replica's process with it: both start again."""
        code = await sidecar.process.wait()
        if process.returncode is None and not self._stopping.is_set():
            self._note(f"the batcher sidecar exited with code {code}: stopping the replica")
            logger.warning("%s: its batcher sidecar exited with code %s", self.label, code)
            await self._terminate(process)

    def metrics_url(self, path: str) -> str | None:
        """Where the platform scrapes the metrics of a ready replica: its batcher sidecar's page, where
        it serves the batcher's with the program's; else the program's `path`, at its routed address
        (through a sidecar, which passes the program's on)."""
        if self.phase != LOADED or not self.address:
            return None
        sidecar = self._batcher
        if sidecar is not None and sidecar.metrics_url is not None:
            return sidecar.metrics_url
        return f"http://{self.address}{path}"

    def _routed_address(self, ports: ReplicaPorts) -> str:
        """Where the gateway sends the replica's HTTP requests: its batcher sidecar, if it has one."""
        return self._batcher.address if self._batcher is not None else f"127.0.0.1:{ports.http}"

    async def _supervise_process(self, client: httpx.AsyncClient, template: dict) -> None:
        ports = self._ports
        guard = self._guard_memory(self._process)
        started = asyncio.Event()
        env = self._env if self._env is not None else template.get("env")
        declared = replica_probes(template, ports, env)
        self._lifecycle = replica_lifecycle(template, ports, env)
        probes = self._guard_liveness(self._process, declared, started, self._lifecycle.post_start)
        try:
            was_ready = await self._watch(client, template, ports, started, declared.readiness)
        finally:
            if probes is not None and self._process.returncode is not None:
                # It ends with the process: let it say whether it stopped it.
                await asyncio.wait({probes}, timeout=self.settings.stop_grace)
            over_memory = _outcome(guard)  # why the guard killed it, if it did
            probe_failed = _outcome(probes)  # why its probes restarted it, if they did
        code = self._process.returncode
        if self._stopping.is_set():
            self._note(f"stopped (exit code {code})")
            return
        self.settings.crashed.add(self._routed_address(ports))
        ended = self.last_termination = _termination(code, over_memory, self.name)
        REPLICA_EXITS.labels(*self._metric_labels(), ended.reason).inc()
        if over_memory is not None:
            self._note(f"{OOM_KILLED}: {over_memory}")
            logger.warning("%s OOMKilled: %s", self.label, over_memory)
        if probe_failed is not None:
            self._note(f"{probe_failed}: restarting it")
            logger.warning("%s: %s", self.label, probe_failed)
        self._note(f"exited with code {code}")
        logger.warning("%s exited with code %s", self.label, code)
        if self.phase == LOADED or (was_ready and self.phase == LOADING):
            # It had loaded its model (and failed no probe since): a restart brings it back.
            self._set(LOADING)
            return
        if over_memory is not None:
            failure = self._failure(f"{OOM_KILLED}: {over_memory}", exit_code=ended.exit_code)
        elif probe_failed is not None:
            failure = self._failure(probe_failed, exit_code=ended.exit_code)
        else:
            message = failure_line(self.log_path) or f"the process exited with code {code}"
            hint = unmounted_path_hint(message, self._mounts)
            if hint is not None:
                self._note(hint)
                message = f"{message} ({hint})"
            failure = self._failure(message, exit_code=code)
        self._set(FAILED_TO_LOAD, failure=failure)

    def _guard_memory(self, process: asyncio.subprocess.Process | ForkedProcess) -> asyncio.Task | None:
        """Enforces the replica's memory limit on `process` while it runs (see `replicas/memory_watch.py`)."""
        limit = self.resources.memory_limit
        if limit is None:
            return None
        if not can_measure():
            self._note("the memory limit is not enforced: this system has no /proc to measure it")
            return None
        interval = self.settings.memory_check_interval
        return asyncio.create_task(
            enforce_memory_limit(process, limit, interval), name=f"memory of {self.label}"
        )

    def _guard_liveness(
        self, process: Process, probes: Probes, started: asyncio.Event, post_start: Hook | None
    ) -> asyncio.Task | None:
        """Runs the replica's `postStart` hook, then its startup and liveness probes, on `process` while
        it runs (replicas/lifecycle.py, replicas/container_probes.py); `started` is set once the hook
        and the startup probe passed. The task's result is why it stopped the process, if it did."""
        if probes.startup is None and probes.liveness is None and post_start is None:
            started.set()
            return None
        return asyncio.create_task(
            self._start_then_guard(process, probes, started, post_start), name=f"probes of {self.label}"
        )

    async def _start_then_guard(
        self, process: Process, probes: Probes, started: asyncio.Event, post_start: Hook | None
    ) -> str | None:
        if post_start is not None:
            self._note(f"postStart hook: {post_start.describe()}")
            hook = asyncio.create_task(post_start.run())
            exited = asyncio.create_task(process.wait())
            await asyncio.wait({hook, exited}, return_when=asyncio.FIRST_COMPLETED)
            exited.cancel()
            if not hook.done():  # the process ended first
                hook.cancel()
                return None
            why = hook.result()
            if why is not None:
                await self._terminate(process)
                return f"FailedPostStartHook: {why}"
        return await guard_liveness(
            process, probes, started, self._grace(), functools.partial(self._terminate, process)
        )

    async def _watch(
        self,
        client: httpx.AsyncClient,
        template: dict,
        ports: ReplicaPorts,
        started: asyncio.Event,
        declared: ProbeSpec | None,
    ) -> bool:
        """Probes the process for readiness until it exits, once its startup probe passed (with its
        `declared` readiness probe, else the default one); whether it was ever ready."""
        process = self._process
        was_ready = False
        repository_index = speaks_modelplane_serve(template["command"])
        waiting = asyncio.ensure_future(started.wait())
        ended = asyncio.ensure_future(process.wait())
        await asyncio.wait({waiting, ended}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        ended.cancel()
        readiness = Readiness(declared) if declared is not None else None
        port_check = PortCheck(process.pid, ports.http, {ports.grpc}, self._port_given_in)
        if declared is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), declared.initial_delay)
        logs_each_probe = not runs_modelplane_server(template["command"])
        next_http_probe = 0.0
        while process.returncode is None:
            if readiness is not None:
                result = ProbeResult(await readiness.probe(client))
            elif logs_each_probe and self.phase == LOADED and time.monotonic() < next_http_probe:
                result = ProbeResult(await accepts_connections(ports.http))
            else:
                result = await probe(
                    client, ports.http, template.get("readinessPath"), repository_index=repository_index
                )
                next_http_probe = time.monotonic() + self.settings.ready_http_probe_interval
            if process.returncode is not None:
                break
            if (
                result.ready
                and self.phase != LOADED
                and self._batcher
                and not await self._batcher.listening()
            ):
                result = ProbeResult(False)  # the program is ready, but its requests' way in is not yet
            if result.ready:
                was_ready = self._ever_ready = True
                if self.phase != LOADED:
                    logger.info("%s is ready on 127.0.0.1:%s", self.label, ports.http)
                self._say_why_not_ready(None)
                self._set(LOADED, address=self._routed_address(ports))
            elif result.failure:
                self._set(FAILED_TO_LOAD, failure=self._failure(result.failure))
            else:
                self._say_why_not_ready(port_check.look())
                if self.phase == LOADED:
                    self._set(LOADING)
                elif self.phase != FAILED_TO_LOAD and (overdue := self._past_progress_deadline(template)):
                    logger.warning("%s %s", self.label, overdue)
                    self._set(FAILED_TO_LOAD, failure=self._failure(overdue))
            interval = self.settings.ready_probe_interval if result.ready else self.settings.probe_interval
            if declared is not None and result.ready:
                interval = declared.period
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), interval)
        self._say_why_not_ready(None)
        return was_ready

    def _past_progress_deadline(self, template: dict) -> str | None:
        """Why its revision fails, when the replica has never been ready and its progress deadline has
        passed, as Knative fails a revision whose initial scale is never achieved (the replica runs on,
        and a readiness that comes later still counts)."""
        deadline = progress_deadline(template, self.settings.progress_deadline)
        if self._ever_ready or time.monotonic() - self._created_at < deadline:
            return None
        why = f": {self.not_ready_reason}" if self.not_ready_reason else ""
        return (
            f"Initial scale was never achieved: not ready within the progress deadline of "
            f"{format_seconds(deadline)} ({PROGRESS_DEADLINE_ANNOTATION}){why}"
        )

    def _say_why_not_ready(self, reason: str | None) -> None:
        """Says in the replica's log, the platform's and its revision's state why it is not ready (None:
        it is, or the platform cannot tell), each time that changes."""
        if reason == self.not_ready_reason:
            return
        self.not_ready_reason = reason
        if reason is not None:
            self._note(f"not ready: {reason}")
            logger.warning("%s is not ready: %s", self.label, reason)
        self._on_change()

    def _failure(self, message: str, *, exit_code: int | None = None, location: str | None = None) -> Failure:
        return Failure(MODEL_LOAD_FAILED, message, exit_code, now_rfc3339(), location or self.name)

    def _knative_revision(self, template: dict) -> str | None:
        """The revision's name where a cluster would run it as a Knative revision (its replicas have
        Knative's variables); None otherwise."""
        if template.get("component") not in COMPONENTS or template.get("deploymentMode"):
            return None
        return self.revision.name

    def _note(self, text: str) -> None:
        """A line of the platform's own in the replica's log, between the process's lines. A log that
        cannot be written (a full or read-only disk) is said once in the platform's log, and the
        replica is looked after all the same."""
        try:
            with self.log_path.open("ab") as log:
                log.write(f"[modelplane {now_rfc3339()}] {self.revision.name}: {text}\n".encode())
        except OSError as exc:
            if not self._log_unwritable:
                logger.warning(
                    "%s: cannot write its log %s: %s", self.label, self.log_path, exc.strerror or exc
                )
            self._log_unwritable = True
            logger.info("%s: %s", self.label, text)
        else:
            self._log_unwritable = False


def _repositories(settings: SupervisorSettings) -> Path:
    """Where multi-model replicas' model folders are: `<repositories>/<namespace>/<service>/<component>/<replica>`."""
    return settings.repositories_dir or settings.logs_dir.parent / "repositories"


async def _stop_drained(replica: Replica, drained: Callable[[str], Awaitable[None]] | None) -> None:
    if drained is not None and replica.address is not None:
        await drained(replica.address)
    await replica.stop()


class RevisionReplicas:
    """The replicas of one revision of one InferenceService component, as many as `scale` asks for.

    Scaling down takes replicas out of `addresses()` at once but stops them only when `stop_removed()`
    is called, which the reconciler does once routes without them are in effect. A revision scaled to
    zero is ready: its first request wakes it up through the gateway.
    """

    def __init__(
        self,
        revision: Revision,
        namespace: str,
        service: str,
        count: int,
        settings: SupervisorSettings,
        on_change: Callable[[], None],
    ) -> None:
        self.revision = revision
        self.desired = count
        self.replicas: list[Replica] = []
        self._settings = settings
        self._on_change = on_change
        self._folder = replica_log_dir(settings.logs_dir, namespace, service, revision.component)
        self._folder.mkdir(parents=True, exist_ok=True)
        self._removed: list[Replica] = []
        self._stopping: set[asyncio.Task] = set()

    def start(self) -> None:
        self.scale(self.desired)

    def scale(self, count: int, busy: Collection[str] = ()) -> None:
        """Starts replicas up to `count`, or sets the surplus aside for `stop_removed()`: first those
        that are not ready, then those with no requests in flight (not at an address in `busy`, the
        gateway's `busy_replicas`), then the newest."""
        self.desired = count
        while len(self.replicas) < count:
            taken = {replica.index for replica in self.replicas}
            index = next(i for i in range(count) if i not in taken)
            log_path = self._folder / f"{self.revision.name}-{index}.log"
            replica = Replica(self.revision, index, log_path, self._settings, self._on_change)
            self.replicas.append(replica)
            replica.start()
        if len(self.replicas) > count:
            by_value = sorted(self.replicas, key=lambda r: (r.phase == LOADED, r.address in busy, -r.index))
            surplus = by_value[: len(self.replicas) - count]
            self.replicas = [replica for replica in self.replicas if replica not in surplus]
            self._removed += surplus

    def stop_removed(self, drained: Callable[[str], Awaitable[None]] | None = None) -> None:
        """Stops, in the background, the replicas that scaling down set aside; with `drained`, each once
        `drained(its address)` has returned (the requests the gateway has in flight on it ended)."""
        for replica in self._removed:
            task = asyncio.create_task(_stop_drained(replica, drained), name=f"stop {replica.label}")
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        self._removed = []

    async def stop(self) -> None:
        replicas, self._removed = [*self.replicas, *self._removed], []
        await asyncio.gather(*(replica.stop() for replica in replicas), *self._stopping)

    async def remove_model_folders(self) -> None:
        """Once the revision is stopped for good: its replicas' model folders (a multi-model revision's
        copies of its TrainedModels), those of replicas scaled away before included. A revision the
        routes name again starts with empty ones, and its models are fetched again."""
        if not is_multi_model_template(self.revision.template):
            return
        parent = _repositories(self._settings) / self._folder.relative_to(self._settings.logs_dir)
        prefix = f"{self.revision.name}-"
        folders = [
            folder
            for folder in (parent.iterdir() if parent.is_dir() else ())
            if folder.name.startswith(prefix) and folder.name[len(prefix) :].isdigit()
        ]
        for folder in folders:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    def ready_pids(self) -> list[int]:
        """The processes of the ready replicas (the autoscaler measures their cpu and memory)."""
        return [pid for r in self.replicas if r.phase == LOADED and (pid := r.pid) is not None]

    def addresses(self) -> tuple[str, ...]:
        return tuple(r.address for r in self.replicas if r.phase == LOADED and r.address)

    def grpc_addresses(self) -> tuple[str, ...]:
        """The gRPC addresses of the replicas `addresses()` lists, in the same order."""
        return tuple(r.grpc_address for r in self.replicas if r.phase == LOADED and r.address)

    def state(self) -> RevisionState:
        ready = sum(1 for r in self.replicas if r.phase == LOADED)
        failed = [r for r in self.replicas if r.phase == FAILED_TO_LOAD]
        waiting = [r.unschedulable for r in self.replicas if r.unschedulable]
        not_ready = [r.not_ready_reason for r in self.replicas if r.phase != LOADED and r.not_ready_reason]
        if ready or (self.desired == 0 and not self.replicas):
            phase = LOADED
        elif failed:
            phase = FAILED_TO_LOAD
        elif waiting and len(waiting) == len(self.replicas):
            phase = PENDING
        else:
            phase = LOADING
        failure = failed[0].failure if failed else None
        ends = [r.last_termination for r in self.replicas if r.last_termination is not None]
        return RevisionState(
            self.revision.name,
            phase,
            ready,
            len(failed),
            failure,
            self.desired,
            restarts=sum(r.restarts for r in self.replicas),
            last_termination=max(ends, key=lambda end: end.finished_at, default=None),
            unschedulable=waiting[0] if waiting else None,
            not_ready=not_ready[0] if not_ready else None,
        )


def replica_targets(
    runner: RevisionReplicas, path: str, labels: tuple[tuple[str, str], ...]
) -> list[ScrapeTarget]:
    """Where each ready replica of a revision serves its metrics, with the labels its samples get."""
    return [
        ScrapeTarget(url, (*labels, ("revision", runner.revision.name), ("replica", str(replica.index))))
        for replica in runner.replicas
        if (url := replica.metrics_url(path)) is not None
    ]


def _modelplane_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "modelplane", *arguments]


def _termination(code: int, over_memory: str | None, replica: str) -> Termination:
    """How a replica's process ended, in Kubernetes' words (a signal N is exit code 128 + N)."""
    if over_memory is not None:
        return Termination(OOM_KILLED, OOM_EXIT_CODE, now_rfc3339(), over_memory, replica)
    reason = "Completed" if code == 0 else "Error"
    return Termination(reason, code if code >= 0 else 128 - code, now_rfc3339(), location=replica)


async def _until_stopped(work: Awaitable[None], stopping: asyncio.Event) -> None:
    """Awaits `work`, which is cancelled (its fetches end) if the replica is stopped first: `stop()`
    waits for the replica's task, and there is no process of the replica's own to end yet."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if not task.cancelled():
        task.result()


def _outcome(task: asyncio.Task | None) -> str | None:
    """What a finished task returned; a task still running is cancelled."""
    if task is None:
        return None
    if not task.done():
        task.cancel()
        return None
    return None if task.cancelled() else task.result()


def _same_failure(a: Failure, b: Failure) -> bool:
    return (a.reason, a.message, a.exit_code, a.location) == (b.reason, b.message, b.exit_code, b.location)


def _signal_group(pid: int, signum: int) -> bool:
    """Signals the replica's process group; False when it has none yet (a child forked a moment ago,
    before its `setsid`), and then the process alone is signalled."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
        return False
    except PermissionError:
        pass
    return True


# A line that says what went wrong: a traceback's last line, or an error as programs log and print it.
_ERROR_LINE = re.compile(
    r"^([A-Za-z_][\w.]*)?(Error|Exception)(: |$)|(^|[\s\[|:])(ERROR|CRITICAL|FATAL)\b|\b[Ee]rror:|^Error\b"
)
# What an interpreter prints as it tears down after the cause (an exit, tasks and loops left behind).
_TEARDOWN = re.compile(
    r"^(SystemExit|KeyboardInterrupt|(asyncio\.(exceptions\.)?)?CancelledError)\b|Event loop is closed"
)
_FAILURE_LINES = 100


def failure_line(path: Path, limit: int = 16384) -> str | None:
    """Why the process ended, for a failure message: among its last lines (not the platform's notes),
    the last one that reads as an error, other than the interpreter's teardown after it; else its last
    line."""
    try:
        with path.open("rb") as file:
            file.seek(max(0, path.stat().st_size - limit))
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    own = [line.strip() for line in lines if line.strip() and not line.startswith("[modelplane ")]
    own = own[-_FAILURE_LINES:]
    errors = [line for line in own if _ERROR_LINE.search(line) and not _TEARDOWN.search(line)]
    chosen = errors[-1] if errors else own[-1] if own else None
    return chosen[:1000] if chosen else None
