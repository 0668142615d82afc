"""The TrainedModels of `modelplane up`: each is fetched into, and loaded on, every ready replica of its
InferenceService's predictor, when that predictor is a multi-model server.

It watches TrainedModels and InferenceServices, and the reconciler tells it which predictor replicas of
each service are ready (`replicas_changed`). One worker per InferenceService (coalescing the changes
that come in while it works):

1. a TrainedModel whose InferenceService does not exist is deleted;
2. the TrainedModels that may load (the service is a multi-model predictor, their memory has its place:
   `memory_fits`, with how recently each was used read from the replicas' request counters) are made
   to hold on each ready replica: the model is fetched (`modelplane.storage`) into
   `<replica's model folder>/<name>/` and `POST /v2/repository/models/<name>/load` is called; a changed
   spec is unloaded, fetched again and loaded; a model no longer wanted is unloaded and its folder removed
   (`modelplane.agent.server_models`, which `modelplane agent` runs in a cluster's pods too). Each model
   has a task of its own on each replica (`modelplane.agent.model_work`), which looks at the service
   again when it ends: the worker does not wait for them, so a slow fetch holds up no other model;
3. each TrainedModel's status is written when it changed (`modelplane.control.trained_models`).

Before a multi-model replica starts, the supervisor awaits `prepare_folder`, which fetches the service's
TrainedModels into the replica's folder: the server loads them before it is ready (a new revision, a
scale-up, a restart serve them from their first request). It waits at most PREPARE_WAIT for them: a model
still being fetched then is left for the controller to load once the replica is ready, so that a slow
model does not hold up the service. Next to each model's folder,
`.<name>.trainedmodel` records the spec it was fetched for, so that what is there is not fetched or loaded
a second time. A failed fetch or load is tried again after a back-off (per replica and model), and says
why in the TrainedModel's `Ready` condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelplane.agent.model_folder import ModelFolder
from modelplane.agent.model_list import WantedModel
from modelplane.agent.model_work import ModelWork
from modelplane.agent.repository import RepositoryClient
from modelplane.agent.server_models import ServerModels
from modelplane.api.kinds import INFERENCE_SERVICE, TRAINED_MODEL
from modelplane.control.trained_models import (
    LoadState,
    is_mms_predictor,
    memory_fits,
    memory_limit,
    model_digest,
    parent_name,
    trained_model_labels,
    trained_model_status,
)
from modelplane.local.api.errors import Conflict, NotFound
from modelplane.local.api.managed_fields import CONTROL_PLANE_MANAGER, UpdateOwnership
from modelplane.local.api.storage_credentials import StorageCredentials
from modelplane.local.api.store import Ref, Store
from modelplane.local.controllers.keyed_work import KeyedWorkers, resource_key, watch_kind
from modelplane.local.replicas.command import fetch_environment
from modelplane.local.replicas.fetch_credentials import FetchCredentials
from modelplane.local.replicas.supervisor import Replica, _modelplane_command, now_rfc3339
from modelplane.local.replicas.zygote import dying_with_this_process

if TYPE_CHECKING:
    from modelplane.local.api.events import EventRecorder
    from modelplane.storage import CredentialStore, Source

logger = logging.getLogger("modelplane.trainedmodels")

Key = tuple[str, str]  # (namespace, name) of an InferenceService
LOAD_TIMEOUT = 600.0
PREPARE_WAIT = 30.0  # how long a multi-model replica's start waits for its TrainedModels' fetches
REQUESTS_SAMPLE = "modelplane_requests_total"  # the model server's count of inference requests
_STORAGE_LINE = b"modelplane storage: "  # how `modelplane storage fetch` says why it failed


class FetchFailed(RuntimeError):
    """`modelplane storage fetch` could not fetch a model; the message says which and why."""


class TrainedModels:
    """Runs on the platform's event loop next to the reconciler, which calls `replicas_changed`."""

    def __init__(self, store: Store, events: EventRecorder | None = None) -> None:
        self.store = store
        self.events = events
        self._credentials = StorageCredentials(store)
        self._replicas: dict[Key, dict[str, Replica]] = {}  # the ready predictor replicas, by address
        self._servers: dict[str, ServerModels] = {}  # what each ready replica holds, by address
        self._work: dict[str, ModelWork] = {}  # the tasks of each ready replica's models, by address
        self._parents: dict[Key, str] = {}  # (namespace, TrainedModel) -> its InferenceService
        self._folders: dict[Key, Path] = {}  # the folder of a service's replicas' model folders
        self._requests: dict[str, dict[str, float]] = {}  # each replica's request counters, per model
        self._last_used: dict[Key, dict[str, float]] = {}  # when a counter was last seen to move
        self._workers = KeyedWorkers(self._reconcile, "trained models of", "trainedmodel")
        self._watches: list[asyncio.Task] = []
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=LOAD_TIMEOUT))
        self._watches = [
            asyncio.create_task(watch_kind(self.store, TRAINED_MODEL.kind, self._on_trained_model_event)),
            asyncio.create_task(watch_kind(self.store, INFERENCE_SERVICE.kind, self._on_service_event)),
        ]

    async def close(self) -> None:
        for task in self._watches:
            task.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        await self._workers.close()
        await asyncio.gather(*(work.cancel() for work in self._work.values()))
        self._work.clear()
        if self._client is not None:
            await self._client.aclose()

    def replicas_changed(self, key: Key, replicas: list[Replica]) -> None:
        """The ready predictor replicas of a service, after each of its reconciles."""
        ready = {r.address: r for r in replicas if r.address and r.model_repository is not None}
        known = self._replicas.get(key, {})
        if {a: r.model_repository for a, r in ready.items()} == {
            a: r.model_repository for a, r in known.items()
        }:
            return
        for address in set(known) - set(ready):
            self._servers.pop(address, None)  # a replica that comes back is looked at afresh
            self._stop_work(address)
            self._requests.pop(address, None)
        if ready:
            self._replicas[key] = ready
            self._folders[key] = next(iter(ready.values())).model_repository.parents[1]
        else:
            self._replicas.pop(key, None)
        self.kick(key)

    # ---- events ----

    def kick(self, key: Key) -> None:
        self._workers.kick(key)

    def _on_trained_model_event(self, type_: str, tm: dict) -> None:
        tm_key = resource_key(tm)
        namespace = tm_key[0]
        before = self._parents.pop(tm_key, None)
        parent = parent_name(tm)
        if type_ != "DELETED" and parent:
            self._parents[tm_key] = parent
        for name in {before, parent} - {None}:
            self.kick((namespace, name))

    def _on_service_event(self, _type: str, isvc: dict) -> None:
        self.kick(resource_key(isvc))

    # ---- one InferenceService ----

    async def _reconcile(self, key: Key) -> bool:
        """Returns True when the key needs no worker until it is kicked again."""
        namespace, name = key
        trained_models = [
            tm for tm in self.store.list(TRAINED_MODEL.kind, namespace)[0] if parent_name(tm) == name
        ]
        try:
            isvc = self.store.get(Ref(INFERENCE_SERVICE.kind, namespace, name))
        except NotFound:
            for tm in trained_models:  # as KServe does: a TrainedModel needs its InferenceService
                logger.info(
                    "%s/%s: InferenceService %s is gone; deleting it", namespace, tm["metadata"]["name"], name
                )
                if self.events is not None:
                    self.events.warning(
                        tm,
                        "InferenceServiceNotFound",
                        f"InferenceService {name} does not exist in namespace {namespace}: "
                        "the TrainedModel is deleted (apply the InferenceService first)",
                    )
                with contextlib.suppress(NotFound):
                    self.store.delete(Ref(TRAINED_MODEL.kind, namespace, tm["metadata"]["name"]))
            self._last_used.pop(key, None)
            for address in self._replicas.get(key, {}):
                self._stop_work(address)
            folder = self._folders.pop(key, None)
            if folder is not None:  # its replicas are stopping: what they loaded stays in memory
                await asyncio.to_thread(shutil.rmtree, folder, True)
            return key not in self._replicas
        replicas = list(self._replicas.get(key, {}).values())
        limit = memory_limit(isvc)
        if limit is not None and trained_models:
            await self._note_use(key, replicas)
        fits = memory_fits(trained_models, limit, self._last_used.get(key))
        wanted = _wanted(isvc, trained_models, fits)
        failures: dict[str, str] = {}  # model -> why it failed (on one replica at least)
        for replica in replicas:
            server = self._server(replica)
            if not server.recovered:
                await server.recover()
            self._work_of(key, replica).start(wanted)
            for model, message in server.failed(wanted).items():
                failures.setdefault(model, message)
        self._write_statuses(isvc, trained_models, fits, replicas, failures)
        self._retry_later(key, replicas)
        return not trained_models and not replicas  # if so, nothing to look after until a change

    async def prepare_folder(self, replica: Replica) -> None:
        """Before a multi-model replica starts (the supervisor awaits this): its service's TrainedModels are
        fetched into its folder, so that the server loads them before it says it is ready, and a folder of
        a model no longer wanted is removed. A failure is left for the controller, once the replica is ready."""
        folder = replica.model_repository
        namespace, name = folder.parents[2].name, folder.parents[1].name
        try:
            isvc = self.store.get(Ref(INFERENCE_SERVICE.kind, namespace, name))
        except NotFound:
            return
        trained_models = [
            tm for tm in self.store.list(TRAINED_MODEL.kind, namespace)[0] if parent_name(tm) == name
        ]
        fits = memory_fits(trained_models, memory_limit(isvc), self._last_used.get((namespace, name)))
        wanted = _wanted(isvc, trained_models, fits)
        failures = await ModelFolder(folder).prepare(wanted, self._fetcher(replica), wait=PREPARE_WAIT)
        for model, message in sorted(failures.items()):
            logger.warning("%s: fetching trained model %s failed: %s", replica.label, model, message)

    async def _note_use(self, key: Key, replicas: list[Replica]) -> None:
        """The models whose request counter (`modelplane_requests_total`) grew on a replica since the
        last look were used now: what the least recently used eviction goes by."""
        used = self._last_used.setdefault(key, {})
        now = time.monotonic()
        for replica in replicas:
            counts = await _requests_by_model(self._client, replica.address)
            before = self._requests.get(replica.address, {})
            for model, count in counts.items():
                if count > before.get(model, 0.0):
                    used[model] = now
            self._requests[replica.address] = counts

    def _server(self, replica: Replica) -> ServerModels:
        server = self._servers.get(replica.address)
        if server is None:
            server = self._servers[replica.address] = ServerModels(
                RepositoryClient(self._client, f"http://{replica.address}"),
                ModelFolder(replica.model_repository),
                self._fetcher(replica),
                label=replica.label,
                note=functools.partial(_note, replica),
            )
        return server

    def _work_of(self, key: Key, replica: Replica) -> ModelWork:
        work = self._work.get(replica.address)
        if work is None:
            work = self._work[replica.address] = ModelWork(
                self._server(replica), done=functools.partial(self.kick, key)
            )
        return work

    def _stop_work(self, address: str) -> None:
        work = self._work.pop(address, None)
        if work is not None:
            work.stop()

    def _fetcher(self, replica: Replica) -> Callable[[str, Path], Awaitable[None]]:
        """`fetch_model` for the models of a replica's service, with its namespace's storage configs
        and its predictor's ServiceAccount credentials."""
        namespace = replica.model_repository.parents[2].name
        names = replica.revision.template.get("credentials") or {}
        return functools.partial(
            fetch_model,
            log_path=replica.log_path,
            credentials=functools.partial(self._credentials.for_namespace, namespace),
            account=functools.partial(
                self._credentials.of_service_account,
                namespace,
                names.get("serviceAccountName"),
                names.get("storageSecretName"),
                names.get("imagePullSecrets"),
            ),
        )

    def _retry_later(self, key: Key, replicas: list[Replica]) -> None:
        """Looks at the service again when its first failed model is due to be tried again."""
        servers = [self._servers[r.address] for r in replicas if r.address in self._servers]
        due = [at for at in (server.next_retry() for server in servers) if at is not None]
        if due:
            delay = max(min(due) - time.monotonic(), 0.0) + 0.01
            asyncio.get_running_loop().call_later(delay, self.kick, key)

    def _write_statuses(
        self,
        isvc: dict,
        trained_models: list[dict],
        fits: dict[str, bool],
        replicas: list[Replica],
        failures: dict[str, str],
    ) -> None:
        held = [self._servers[r.address].held for r in replicas if r.address in self._servers]
        for tm in trained_models:
            model = tm["metadata"]["name"]
            self._write_labels(tm, fits[model])
            digest = model_digest(tm)
            loaded = sum(1 for models in held if models.get(model) == digest)
            load = LoadState(len(replicas), loaded, failures.get(model))
            previous = tm.get("status") or {}
            status = trained_model_status(
                tm, isvc, fits=fits[model], load=load, now=now_rfc3339(), previous=previous
            )
            if status != previous:
                with contextlib.suppress(NotFound):
                    self.store.set_status(Ref(TRAINED_MODEL.kind, tm["metadata"]["namespace"], model), status)

    def _write_labels(self, tm: dict, fits: bool) -> None:
        labels = trained_model_labels(tm, fits)
        if labels == (tm["metadata"].get("labels") or {}):
            return

        def labelled(current: dict) -> dict:
            return {**current, "metadata": {**current["metadata"], "labels": labels}}

        with contextlib.suppress(NotFound, Conflict):  # changed meanwhile: the next round looks again
            self.store.update(
                Ref(TRAINED_MODEL.kind, tm["metadata"]["namespace"], tm["metadata"]["name"]),
                labelled,
                record_owners=UpdateOwnership(TRAINED_MODEL, CONTROL_PLANE_MANAGER).record,
            )


def model_source(uri: str, credentials: Callable[[], CredentialStore] | None = None) -> Source:
    """Where `fetch_model` fetches from, and with which credentials."""
    from modelplane.storage import resolve

    if not uri.startswith("{"):
        return resolve(uri)
    given = json.loads(uri)
    return resolve(given.get("storageUri"), given["storage"], store=credentials() if credentials else None)


async def fetch_model(
    uri: str,
    dest: Path,
    log_path: Path,
    credentials: Callable[[], CredentialStore] | None = None,
    account: Callable[[], FetchCredentials] | None = None,
) -> None:
    """The storage initializer for one model of a multi-model server (`uri` is a storage URI, or JSON
    of a `storage` spec, whose key resolves against `credentials()`, and of the `storageUri` beside it,
    as `storage_argument` writes it): a local folder or pvc claim
    is linked (or copied) on a thread; anything else is fetched (through the model cache) by
    `modelplane storage fetch` in a child process, whose progress goes to the replica's log, with the
    ServiceAccount credentials `account()` gives where there is no `storage` spec."""
    from modelplane.storage import fetch

    source = model_source(uri, credentials)
    if source.location.kind in ("local", "pvc"):
        await asyncio.to_thread(fetch, source, dest)
        return
    given = account() if account is not None and not uri.startswith("{") else FetchCredentials()
    with log_path.open("ab") as log, given.materialized() as account_env:
        for note in given.notes:
            log.write(f"[modelplane {now_rfc3339()}] storage initializer: {note}\n".encode())
            log.flush()
        process = await asyncio.create_subprocess_exec(
            *_modelplane_command("storage", "fetch", source.uri, str(dest)),
            env=fetch_environment(source, account_env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=dying_with_this_process(),
        )
        assert process.stderr is not None
        try:
            why = await _relayed(process.stderr, log)
            code = await process.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
    if code != 0:
        where = source.location.display
        if why:
            raise FetchFailed(f"fetching {where} failed: {why}")
        raise FetchFailed(f"fetching {where} failed (exit code {code}; the replica's log says why)")


async def _relayed(stderr: asyncio.StreamReader, log: BinaryIO) -> str | None:
    """Copies what `modelplane storage fetch` writes on stderr into the replica's log, and answers the
    error it ended with: its last `modelplane storage: <why>` line, without the prefix. (The supervisor
    reads a failed fetch's line back from the log; here the running server writes there too.)"""
    last = pending = b""
    while chunk := await stderr.read(65536):
        log.write(chunk)
        log.flush()
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.startswith(_STORAGE_LINE):
                last = line
        if len(pending) > 65536:  # no line to keep is that long
            pending = b""
    if pending.startswith(_STORAGE_LINE):
        last = pending
    return last[len(_STORAGE_LINE) :].decode(errors="replace").strip()[:1000] or None


async def _requests_by_model(client: httpx.AsyncClient, address: str) -> dict[str, float]:
    """The inference requests a replica answered, per model, from its metrics (none if out of reach)."""
    try:
        response = await client.get(f"http://{address}/metrics", timeout=5.0)
        response.raise_for_status()
    except httpx.HTTPError:
        return {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == REQUESTS_SAMPLE and "model_name" in sample.labels:
                model = sample.labels["model_name"]
                counts[model] = counts.get(model, 0.0) + sample.value
    return counts


def _wanted(isvc: dict, trained_models: list[dict], fits: dict[str, bool]) -> dict[str, WantedModel]:
    """The TrainedModels a service's replicas are to hold, by name."""
    if not is_mms_predictor(isvc):
        return {}
    return {
        tm["metadata"]["name"]: WantedModel(tm["spec"]["model"]["storageUri"], model_digest(tm))
        for tm in trained_models
        if fits[tm["metadata"]["name"]]
    }


def _note(replica: Replica, text: str) -> None:
    """A line of the platform's own in the replica's log."""
    with contextlib.suppress(OSError), replica.log_path.open("ab") as log:
        log.write(f"[modelplane {now_rfc3339()}] {replica.revision.name}: {text}\n".encode())
