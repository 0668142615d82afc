"""The TrainedModels of `modelplane up`: each is fetched into, and loaded on, every ready replica of its
InferenceService's predictor, when that predictor is a multi-model server.

It watches TrainedModels and InferenceServices, and the reconciler tells it which predictor replicas of
each service are ready (`replicas_changed`). One worker per InferenceService (coalescing the changes
that come in while it works):

1. a TrainedModel whose InferenceService does not exist is deleted;
2. the TrainedModels that may load (the service is a multi-model predictor, their memory fits) are made
   to hold on each ready replica: the model is fetched (`modelplane.storage`) into
   `<replica's model folder>/<name>/` and `POST /v2/repository/models/<name>/load` is called; a changed
   spec is unloaded, fetched again and loaded; a model no longer wanted is unloaded and its folder removed;
3. each TrainedModel's status is written when it changed (`modelplane.control.trained_models`).

Before a multi-model replica starts, the supervisor awaits `prepare_folder`, which fetches the service's
TrainedModels into the replica's folder: the server loads them before it is ready (a new revision, a
scale-up, a restart serve them from their first request). Next to each model's folder,
`.<name>.trainedmodel` records the spec it was fetched for, so that what is there is not fetched or loaded
a second time. A failed fetch or load is tried again after a back-off (per replica and model), and says
why in the TrainedModel's `Ready` condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx

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
from modelplane.local.api_errors import Conflict, NotFound
from modelplane.local.keyed_work import KeyedWorkers, resource_key, watch_kind
from modelplane.local.store import Ref, Store
from modelplane.local.supervisor import Replica, _modelplane_command, now_rfc3339
from modelplane.local.zygote import die_with_parent

logger = logging.getLogger("modelplane.trainedmodels")

Key = tuple[str, str]  # (namespace, name) of an InferenceService
LOAD_TIMEOUT = 600.0
RETRY_INITIAL, RETRY_MAX = 2.0, 60.0


@dataclass(frozen=True)
class _Attempt:
    digest: str
    message: str
    retry_at: float  # the event loop's time
    backoff: float


class TrainedModels:
    """Runs on the platform's event loop next to the reconciler, which calls `replicas_changed`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._replicas: dict[Key, dict[str, Replica]] = {}  # the ready predictor replicas, by address
        self._held: dict[str, dict[str, str]] = {}  # replica address -> model -> digest it holds
        # (replica address, model) -> the failed attempt: the spec's digest, why, when to try again, back-off
        self._attempts: dict[tuple[str, str], _Attempt] = {}
        self._parents: dict[Key, str] = {}  # (namespace, TrainedModel) -> its InferenceService
        self._folders: dict[Key, Path] = {}  # the folder of a service's replicas' model folders
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
            self._held.pop(address, None)  # a replica that comes back is looked at afresh
            for attempt in [a for a in self._attempts if a[0] == address]:
                del self._attempts[attempt]
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
                with contextlib.suppress(NotFound):
                    self.store.delete(Ref(TRAINED_MODEL.kind, namespace, tm["metadata"]["name"]))
            folder = self._folders.pop(key, None)
            if folder is not None:  # its replicas are stopping: what they loaded stays in memory
                await asyncio.to_thread(shutil.rmtree, folder, True)
            return key not in self._replicas
        fits = memory_fits(trained_models, memory_limit(isvc))
        wanted = _wanted(isvc, trained_models, fits)
        replicas = list(self._replicas.get(key, {}).values())
        failures: dict[str, str] = {}  # model -> why it failed (on one replica at least)
        for problems in await asyncio.gather(*(self._sync(replica, wanted) for replica in replicas)):
            for model, message in problems.items():
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
        wanted = _wanted(isvc, trained_models, memory_fits(trained_models, memory_limit(isvc)))
        for entry in folder.iterdir():
            if entry.is_dir() and entry.name not in wanted:
                _marker(folder, entry.name).unlink(missing_ok=True)
                await asyncio.to_thread(shutil.rmtree, entry, True)
        for model, tm in sorted(wanted.items()):
            marker = _marker(folder, model)
            if (
                (folder / model).is_dir()
                and marker.is_file()
                and marker.read_text().strip() == model_digest(tm)
            ):
                continue
            try:
                await self._fetch_into(replica, folder, model, tm)
            except Exception as exc:  # noqa: BLE001 - the controller tries again once the replica is ready
                logger.warning("%s: fetching trained model %s failed: %s", replica.label, model, exc)

    def _retry_later(self, key: Key, replicas: list[Replica]) -> None:
        """Looks at the service again when its first failed model is due to be tried again."""
        addresses = {r.address for r in replicas}
        due = [attempt.retry_at for (address, _), attempt in self._attempts.items() if address in addresses]
        if due:
            loop = asyncio.get_running_loop()
            loop.call_later(max(min(due) - loop.time(), 0.0) + 0.01, self.kick, key)

    def _write_statuses(
        self,
        isvc: dict,
        trained_models: list[dict],
        fits: dict[str, bool],
        replicas: list[Replica],
        failures: dict[str, str],
    ) -> None:
        for tm in trained_models:
            model = tm["metadata"]["name"]
            self._write_labels(tm, fits[model])
            digest = model_digest(tm)
            loaded = sum(1 for r in replicas if self._held.get(r.address, {}).get(model) == digest)
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
                Ref(TRAINED_MODEL.kind, tm["metadata"]["namespace"], tm["metadata"]["name"]), labelled
            )

    # ---- one replica ----

    async def _sync(self, replica: Replica, wanted: dict[str, dict]) -> dict[str, str]:
        """Makes a replica hold exactly the wanted models; returns why each one that failed did."""
        folder = replica.model_repository
        assert folder is not None and replica.address is not None
        held = self._held.get(replica.address)
        if held is None:
            held = self._held[replica.address] = await self._recovered(replica, folder)
        problems: dict[str, str] = {}
        for attempt in [a for a in self._attempts if a[0] == replica.address and a[1] not in wanted]:
            del self._attempts[attempt]
        present = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
        for model in (set(held) | present) - set(wanted):
            try:
                await self._unload(replica, folder, model)
            except (httpx.HTTPError, OSError) as exc:
                logger.warning("%s: unloading %s failed: %s", replica.label, model, exc)
                continue
            held.pop(model, None)
        loop = asyncio.get_running_loop()
        for model, tm in sorted(wanted.items()):
            digest = model_digest(tm)
            if held.get(model) == digest:
                continue
            before = self._attempts.get((replica.address, model))
            if before is not None and before.digest != digest:
                before = None  # a changed spec is tried at once
            if before is not None and loop.time() < before.retry_at:
                problems[model] = before.message
                continue
            try:
                await self._load(replica, folder, model, tm, replaces=model in held)
            except Exception as exc:  # noqa: BLE001 - any failure is reported on the TrainedModel
                message = str(exc) or type(exc).__name__
                backoff = min(before.backoff * 2, RETRY_MAX) if before else RETRY_INITIAL
                logger.warning(
                    "%s: trained model %s failed (again in %.0fs): %s", replica.label, model, backoff, message
                )
                _note(replica, f"trained model {model} failed: {message}")
                self._attempts[(replica.address, model)] = _Attempt(
                    digest, message, loop.time() + backoff, backoff
                )
                held.pop(model, None)
                problems[model] = message
            else:
                self._attempts.pop((replica.address, model), None)
                held[model] = digest
        return problems

    async def _recovered(self, replica: Replica, folder: Path) -> dict[str, str]:
        """What a replica seen for the first time already holds: the models it loaded from its folder
        at start, with the spec each was fetched for."""
        try:
            response = await self._client.post(f"http://{replica.address}/v2/repository/index", content=b"{}")
            index = response.json() if response.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return {}
        held = {}
        for entry in index:
            marker = _marker(folder, str(entry.get("name")))
            if entry.get("state") == "READY" and marker.is_file():
                held[entry["name"]] = marker.read_text().strip()
        return held

    async def _load(self, replica: Replica, folder: Path, model: str, tm: dict, *, replaces: bool) -> None:
        if replaces:  # a changed spec: out with the old one first (the runtime may differ)
            await self._unload(replica, folder, model)
        await self._fetch_into(replica, folder, model, tm)
        response = await self._client.post(f"http://{replica.address}/v2/repository/models/{model}/load")
        if response.status_code != 200:
            raise RuntimeError(_error_of(response))
        _note(replica, f"trained model {model}: loaded")
        logger.info("%s: trained model %s loaded", replica.label, model)

    async def _fetch_into(self, replica: Replica, folder: Path, model: str, tm: dict) -> None:
        """`<folder>/<model>/` holds the model `tm` names, and its marker says which spec it came from."""
        uri = tm["spec"]["model"]["storageUri"]
        _marker(folder, model).unlink(missing_ok=True)
        await asyncio.to_thread(shutil.rmtree, folder / model, True)
        _note(replica, f"trained model {model}: fetching {uri}")
        await _fetch(uri, folder / model, replica.log_path)
        _marker(folder, model).write_text(model_digest(tm))

    async def _unload(self, replica: Replica, folder: Path, model: str) -> None:
        response = await self._client.post(f"http://{replica.address}/v2/repository/models/{model}/unload")
        if response.status_code not in (200, 404):
            raise httpx.HTTPError(_error_of(response))
        _marker(folder, model).unlink(missing_ok=True)
        await asyncio.to_thread(shutil.rmtree, folder / model, True)
        _note(replica, f"trained model {model}: unloaded")
        logger.info("%s: trained model %s unloaded", replica.label, model)


async def _fetch(uri: str, dest: Path, log_path: Path) -> None:
    """The storage initializer for one TrainedModel: a local folder or pvc claim is linked (or copied) on a
    thread; anything else is fetched (through the model cache) by `modelplane storage fetch` in a child
    process, whose progress goes to the replica's log."""
    from modelplane.storage import fetch, resolve

    source = resolve(uri)
    if source.location.kind in ("local", "pvc"):
        await asyncio.to_thread(fetch, source, dest)
        return
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *_modelplane_command("storage", "fetch", uri, str(dest)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    try:
        code = await process.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
    if code != 0:
        raise RuntimeError(f"fetching {uri} failed (exit code {code}; the replica's log says why)")


def _wanted(isvc: dict, trained_models: list[dict], fits: dict[str, bool]) -> dict[str, dict]:
    """The TrainedModels a service's replicas are to hold, by name."""
    if not is_mms_predictor(isvc):
        return {}
    return {tm["metadata"]["name"]: tm for tm in trained_models if fits[tm["metadata"]["name"]]}


def _marker(folder: Path, model: str) -> Path:
    return folder / f".{model}.trainedmodel"


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.text)
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"


def _note(replica: Replica, text: str) -> None:
    """A line of the platform's own in the replica's log."""
    with contextlib.suppress(OSError), replica.log_path.open("ab") as log:
        log.write(f"[modelplane {now_rfc3339()}] {replica.revision.name}: {text}\n".encode())
