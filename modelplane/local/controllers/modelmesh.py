"""ModelMesh services on `modelplane up`: models placed on their runtime's pool, loaded when used, and
unloaded least recently used first when a replica's memory is full.

The reconciler hands each ModelMesh InferenceService to `reconcile`. Its model's runtime (a
multi-model one) gets a pool of replicas (`controllers/modelmesh_pool.py`), started with the first service that
needs it and stopped a grace period after the last has gone (ModelMesh Serving's scaleToZero). The gateway routes the service's hosts to a backend of its own,
`modelmesh/<namespace>/<name>`, whose replicas are the pool replicas that hold the model: none at first,
so the first request waits in the gateway and asks for the model (`wake_from_any_thread`). Then, one
load at a time per pool:

1. the placement (`modelplane.control.placement`) chooses a replica, and which least recently used
   copies leave it, by the sizes known (a model loaded before keeps its size);
2. the model is fetched into the replica's folder; its files' size is its estimate, and copies leave
   until it fits (a model bigger than a replica's memory for models fails with that reason);
3. it is loaded through the replica's repository API; the replica's memory grown by the load, when
   larger than the estimate, becomes the model's size, and copies leave again if the replica is over;
4. the route gets the replica, and the requests waiting are handed to it.

Before it places anything on a replica it has not asked yet, the controller learns what the replica
holds (its repository index, and the sizes recorded in its folder): nothing for a new one; its models,
still loaded, for one a restart of the platform in place took back. So the models stay loaded, in the
routes at once, and count against the replica's memory.

A busy model gets more copies, on other replicas where they fit, and its extra copies leave once
its load no longer needs them (`modelplane.control.mesh_copies`).

How recently a model was used comes from the gateway's request counters of its backend. A model that
fails to load is `FailedToLoad`; its requests are answered 503 with the reason until a back-off ends
(then the next request tries again) or its spec changes. A changed spec of a model with copies is
loaded at once, the old version serving until then is reported as the active one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from modelplane.agent.model_folder import ModelFolder, SchemaUnavailable
from modelplane.agent.model_list import WantedModel
from modelplane.agent.repository import RepositoryClient
from modelplane.agent.server_models import ServerModels
from modelplane.api import RuntimeSelectionError, with_builtin_runtimes
from modelplane.api.conditions import MODEL_LOAD_FAILED, RUNTIME_UNHEALTHY
from modelplane.api.kinds import CLUSTER_SERVING_RUNTIME, INFERENCE_SERVICE, SERVING_RUNTIME
from modelplane.api.runtime_selection import RuntimeSelection
from modelplane.control import Failure, latest_revisions
from modelplane.control.mesh_copies import SCALE_DOWN_DELAY, CopyScaler, extra_copy_room, surplus_copy
from modelplane.control.mesh_pool_template import pool_template
from modelplane.control.modelmesh import (
    SCALE_TO_ZERO_GRACE_PERIOD,
    MeshModelState,
    PoolSpec,
    mesh_model,
    mesh_service_status,
    model_digest,
    model_revision_name,
    pool_spec,
    schema_argument,
    select_pool_runtime,
    storage_argument,
)
from modelplane.control.placement import DoesNotFit, over_capacity, place
from modelplane.control.status import exit_failure
from modelplane.control.urls import component_host, service_host
from modelplane.local.api.errors import NotFound
from modelplane.local.api.store import Ref, Store
from modelplane.local.controllers.modelmesh_pool import (
    HeldCopy,
    Pool,
    folder_size,
    new_client,
    pool_settings,
    replica_memory,
)
from modelplane.local.controllers.trained_models import FetchFailed, fetch_model
from modelplane.local.gateway.modelmesh_endpoint import endpoint_host
from modelplane.local.gateway.revisions import RevisionStats
from modelplane.local.gateway.routes import Backend, Route
from modelplane.local.replicas.supervisor import Replica, RevisionReplicas, SupervisorSettings, now_rfc3339

if TYPE_CHECKING:
    from modelplane.storage import CredentialStore

logger = logging.getLogger("modelplane.modelmesh")

Key = tuple[str, str]  # (namespace, name) of an InferenceService
# Records a model's failure to load: (model, message, location, pool, replica).
_Failed = Callable[..., None]
PoolKey = tuple[str, str, str]  # (namespace, runtime kind, runtime name)
BACKEND_PREFIX = "modelmesh/"
RETRY_INITIAL, RETRY_MAX = 5.0, 60.0
DRAIN_WAIT = 5.0  # seconds an evicted copy's requests under way are given to finish
LOAD_TICK = 1.0  # seconds between two looks at the models' load


@dataclass
class _Model:
    """One ModelMesh service's model."""

    namespace: str
    name: str
    isvc: dict = field(default_factory=dict)
    runtime: RuntimeSelection | None = None
    pool: PoolKey | None = None
    invalid: Failure | None = None
    wanted: WantedModel | None = None
    active_revision: str | None = None  # the version that last loaded (None: none yet, or replaced)
    size: int | None = None  # bytes, once known
    last_used: float = 0.0
    load: asyncio.Task | None = None
    failure: Failure | None = None  # the last failure of the version wanted
    exit: Failure | None = None  # how the process of a replica that held a copy last ended
    exit_revision: str = ""  # the version of that copy
    failed_on: set[str] = field(default_factory=set)  # replicas where the version wanted failed
    retry_at: float = 0.0
    backoff: float = 0.0
    scaler: CopyScaler = field(default_factory=CopyScaler)
    scaling: asyncio.Task | None = None  # a copy being added or taken off for the model's load

    @property
    def backend(self) -> str:
        return f"{BACKEND_PREFIX}{self.namespace}/{self.name}"

    @property
    def revision(self) -> str:
        return model_revision_name(self.name, self.wanted.digest) if self.wanted else ""


class ModelMesh:
    """Runs on the platform's event loop next to the reconciler, which calls `reconcile` for each
    ModelMesh service and asks for `routes()`."""

    def __init__(
        self,
        store: Store,
        settings: SupervisorSettings,
        on_routes: Callable[[], None],
        stats: Callable[[], dict[str, RevisionStats]],
    ) -> None:
        self.store = store
        self.settings = settings
        self._pool_settings = pool_settings(settings)
        self._on_routes = on_routes
        self._stats = stats
        self._models: dict[Key, _Model] = {}
        self._pools: dict[PoolKey, Pool] = {}
        self._servers: dict[str, ServerModels] = {}  # by replica address
        self._client = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self.copy_grace_period = SCALE_DOWN_DELAY  # before a copy the load no longer needs leaves
        self.scale_to_zero_grace_period = SCALE_TO_ZERO_GRACE_PERIOD  # before a pool nobody uses stops
        self._idle_pools: dict[PoolKey, asyncio.TimerHandle] = {}  # each one's stop, due at its end

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = new_client()
        self._spawn(self._watch_load())

    async def close(self) -> None:
        for timer in self._idle_pools.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(pool.runner.stop() for pool in self._pools.values()), return_exceptions=True)
        self._pools.clear()
        if self._client is not None:
            await self._client.aclose()

    def keys(self) -> list[Key]:
        return list(self._models)

    # ---- the reconciler's side ----

    async def reconcile(self, key: Key, isvc: dict | None) -> None:
        """A ModelMesh service was created, changed or (`isvc` None) deleted."""
        if isvc is None:
            model = self._models.pop(key, None)
            if model is not None:
                for task in (model.load, model.scaling):
                    if task is not None:
                        task.cancel()
                self._on_routes()
                if model.pool in self._pools:
                    await self._take_off(model.name, self._pools[model.pool], "as its service was deleted")
                self._release_unused_pools()
            return
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = _Model(*key)
        model.isvc = isvc
        self._plan(model)
        self._release_unused_pools()
        self._on_routes()
        self._write_status(model)

    def _plan(self, model: _Model) -> None:
        """The model's runtime, pool and wanted version, from its spec."""
        namespaced, _ = self.store.list(SERVING_RUNTIME.kind, model.namespace)
        cluster = with_builtin_runtimes(self.store.list(CLUSTER_SERVING_RUNTIME.kind)[0])
        spec = mesh_model(model.isvc) or {}
        try:
            schema = schema_argument(spec)
            selection = select_pool_runtime(model.isvc, namespaced, cluster)
            self._ensure_pool(model.namespace, selection, namespaced, cluster)
        except RuntimeSelectionError as exc:
            if model.invalid is None or model.invalid.message != exc.message:
                logger.warning("%s/%s cannot be served: %s", model.namespace, model.name, exc)
            model.invalid = Failure(exc.reason, exc.message, time=now_rfc3339())
            if not self._still_serves(model, namespaced, cluster):
                model.runtime, model.pool = None, None
            return
        model.invalid, model.runtime = None, selection
        digest = model_digest(spec)
        # The replica answers as ModelMesh's runtimes do: with the version's id as the model_name.
        revision = model_revision_name(model.name, digest)
        wanted = WantedModel(storage_argument(spec), digest, revision, schema)
        pool_key = (model.namespace, selection.kind, selection.name)
        old_pool, old_wanted = model.pool, model.wanted
        if (wanted, pool_key) == (old_wanted, old_pool):
            return
        had_copies = old_pool in self._pools and bool(self._pools[old_pool].holders(model.name))
        if had_copies and old_pool != pool_key:
            self._spawn(self._take_off(model.name, self._pools[old_pool], "as it moved to another runtime"))
        model.pool, model.wanted = pool_key, wanted
        model.failure, model.failed_on, model.backoff, model.retry_at = None, set(), 0.0, 0.0
        if had_copies and old_pool == pool_key:
            # The old version stays the active one until the new one is loaded (at once).
            logger.info("%s/%s changed: loading %s", model.namespace, model.name, model.revision)
            self._start_load(model)
        else:
            model.active_revision = None

    def _still_serves(self, model: _Model, namespaced: list[dict], cluster: list[dict]) -> bool:
        """Whether the copies of a model whose spec turned invalid serve on, as ModelMesh leaves the
        model of the last valid spec active: they are loaded, and their runtime is still there."""
        pool = self._pools.get(model.pool) if model.pool else None
        if pool is None or model.runtime is None or not pool.holders(model.name):
            return False
        runtimes = namespaced if model.runtime.kind == SERVING_RUNTIME.kind else cluster
        return _serves_models(runtimes, model.runtime.name)

    def _ensure_pool(
        self, namespace: str, selection: RuntimeSelection, namespaced: list[dict], cluster: list[dict]
    ) -> Pool:
        """The pool of a runtime in a namespace, started (or started again when its runtime changed)."""
        spec = pool_spec(selection, namespace)
        key = (namespace, selection.kind, selection.name)
        template = pool_template(spec, namespaced, cluster)
        pool = self._pools.get(key)
        if pool is not None and pool.revision.template == template:
            if pool.spec != spec:
                pool.spec = spec
                pool.runner.scale(spec.replicas)
            return pool
        existing = [pool.revision] if pool is not None else []
        latest, _ = latest_revisions(spec.name, existing, {"predictor": template})
        if pool is not None:
            logger.info("runtime %s changed: its pool starts again", selection.name)
            self._spawn(pool.runner.stop())
        revision = latest["predictor"]
        runner = RevisionReplicas(
            revision,
            namespace,
            spec.name,
            spec.replicas,
            self._pool_settings,
            lambda: self._pool_changed(key),
        )
        logger.info(
            "%s/%s: %d replicas, %dMi each for models",
            namespace,
            spec.name,
            spec.replicas,
            spec.capacity // 1024**2,
        )
        self._pools[key] = Pool(spec, revision, runner)
        runner.start()
        return self._pools[key]

    def _release_unused_pools(self) -> None:
        """A pool no service uses stops once it has stayed so for the grace period, as ModelMesh
        Serving's scaleToZero scales its runtime's pods to zero (at once when its runtime is gone);
        a service that uses it meanwhile finds it running."""
        used = {model.pool for model in self._models.values()}
        for key in [key for key in self._idle_pools if key in used or key not in self._pools]:
            self._idle_pools.pop(key).cancel()
        for key in set(self._pools) - used:
            if not self._runtime_serves(key):
                self._stop_pool(key, "its runtime no longer serves ModelMesh models")
            elif key not in self._idle_pools:
                grace = self.scale_to_zero_grace_period
                logger.info(
                    "%s/%s: no ModelMesh service uses it; it stops in %gs unless one does",
                    key[0],
                    self._pools[key].spec.name,
                    grace,
                )
                self._idle_pools[key] = asyncio.get_running_loop().call_later(
                    grace, self._stop_idle_pool, key
                )

    def runtimes_changed(self) -> None:
        """A runtime changed or went: a pool no service uses whose runtime went stops at once."""
        self._release_unused_pools()

    def _stop_idle_pool(self, key: PoolKey) -> None:
        self._idle_pools.pop(key, None)
        if key in self._pools and all(model.pool != key for model in self._models.values()):
            self._stop_pool(key, f"no ModelMesh service used it for {self.scale_to_zero_grace_period:g}s")

    def _stop_pool(self, key: PoolKey, why: str) -> None:
        timer = self._idle_pools.pop(key, None)
        if timer is not None:
            timer.cancel()
        pool = self._pools.pop(key)
        logger.info("%s/%s: %s; stopping", key[0], pool.spec.name, why)
        self._spawn(pool.runner.stop())

    def _runtime_serves(self, key: PoolKey) -> bool:
        """Whether a pool's runtime is still there, enabled and multi-model."""
        namespace, kind, name = key
        if kind == SERVING_RUNTIME.kind:
            runtimes, _ = self.store.list(kind, namespace)
        else:
            runtimes = with_builtin_runtimes(self.store.list(kind)[0])
        return _serves_models(runtimes, name)

    def _pool_changed(self, key: PoolKey) -> None:
        """A pool replica started, became ready, or went: its models' routes and statuses follow."""
        pool = self._pools.get(key)
        if pool is None:
            return
        for name, (copy, ended) in pool.forget_gone_replicas().items():
            model = self._models.get((pool.spec.namespace, name))
            if model is not None:
                model.exit = exit_failure(ended)
                model.exit_revision = model_revision_name(name, copy.digest)
        ready = {r.address for pool in self._pools.values() for r in pool.ready_replicas()}
        for address in set(self._servers) - ready:
            del self._servers[address]  # a replica that comes back starts empty
        if any(not self._server(pool, r).recovered for r in pool.ready_replicas()):
            self._spawn(self._held_learnt(key))
        self._on_routes()
        for model in self._models.values():
            if model.pool == key:
                self._write_status(model)
        if pool.ready_replicas():  # requests that came while no replica was ready wait for their model
            stats = self._stats()
            for model in list(self._models.values()):
                waiting = stats.get(model.backend)
                if model.pool == key and waiting is not None and waiting.queued:
                    self._wake((model.namespace, model.name))

    # ---- routes ----

    def routes(self) -> dict[str, Route]:
        """The hosts of every ModelMesh service: `<name>.<namespace>.<domain>` and its predictor's."""
        domain = self.settings.domain
        table: dict[str, Route] = {}
        for model in self._models.values():
            route = self._route(model)
            table[service_host(model.name, model.namespace, domain)] = route
            table[component_host(model.name, model.namespace, "predictor", domain)] = route
        return table

    def endpoints(self) -> dict[str, dict[str, str]]:
        """ModelMesh Serving's single endpoint of each namespace (`gateway/modelmesh_endpoint.py`): its
        models by name, and by the id of the version that serves (`mm-model-id`), each to its
        service's host."""
        domain = self.settings.domain
        table: dict[str, dict[str, str]] = {}
        for model in self._models.values():
            models = table.setdefault(endpoint_host(model.namespace, domain), {})
            host = service_host(model.name, model.namespace, domain)
            models[model.name] = host
            for version in {model.revision, model.active_revision} - {"", None}:
                models[version] = host
        return table

    def _route(self, model: _Model) -> Route:
        refusal = None
        holders: list[Replica] = []
        pool = self._pools.get(model.pool) if model.pool else None
        if pool is not None and model.wanted is not None:
            # The active version serves until the version the spec names is loaded, or if it fails to
            # (or the spec is invalid: the pool is then the last valid spec's).
            holders = pool.holders(model.name, model.wanted.digest) or (
                pool.holders(model.name) if model.active_revision is not None else []
            )
        if model.invalid is not None and not holders:
            refusal = f"{model.namespace}/{model.name} cannot be served: {model.invalid.message}"
        elif not holders and model.failure is not None and time.monotonic() < model.retry_at:
            refusal = f"the model of {model.namespace}/{model.name} failed to load: {model.failure.message}"
        elif not holders and pool is not None and pool.runner.state().gave_up:
            why = _pool_failure(pool)
            refusal = f"the pool of {model.namespace}/{model.name}'s runtime does not start: {why.message}"
        backend = Backend(
            model.backend,
            tuple(r.address for r in holders),
            grpc_replicas=tuple(r.grpc_address or r.address for r in holders),
        )
        return Route((backend,), refusal=refusal)

    # ---- loading on demand ----

    def wake_from_any_thread(self, backend: str) -> bool:
        """The gateway's `on_demand` for a ModelMesh backend: a request waits for the model. False
        when `backend` is not one of them."""
        if not backend.startswith(BACKEND_PREFIX) or self._loop is None:
            return False
        namespace, _, name = backend.removeprefix(BACKEND_PREFIX).partition("/")
        with contextlib.suppress(RuntimeError):  # the platform's loop is closing
            self._loop.call_soon_threadsafe(self._wake, (namespace, name))
        return True

    def _wake(self, key: Key) -> None:
        model = self._models.get(key)
        if model is None or model.invalid is not None or model.load is not None:
            return
        if model.failure is not None and time.monotonic() < model.retry_at:
            return
        pool = self._pools.get(model.pool) if model.pool else None
        if pool is None or not pool.ready_replicas():
            return  # the pool starts or restarts: `_pool_changed` wakes it once a replica is ready
        self._start_load(model)

    def _start_load(self, model: _Model) -> None:
        if model.load is not None:
            return
        model.load = asyncio.create_task(self._load(model), name=f"load {model.backend}")
        self._write_status(model)

    async def _load(self, model: _Model) -> None:
        try:
            pool = self._pools.get(model.pool) if model.pool else None
            if pool is None or model.wanted is None:
                return
            async with pool.lock:
                await self._learn_holdings(pool)
                try:
                    await self._place_and_load(pool, model, model.wanted)
                finally:
                    await self._settle_set_aside(pool, model)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("loading %s failed unexpectedly", model.backend)
        finally:
            model.load = None
            self._on_routes()
            self._write_status(model)

    async def _place_and_load(self, pool: Pool, model: _Model, wanted: WantedModel) -> None:
        if pool.holders(model.name, wanted.digest):
            return
        self._note_use()
        model.last_used = time.monotonic()
        # Where it goes by the size known (a model loaded before keeps its size), fetched there; then,
        # by its files' size, where it goes (fetched again elsewhere if that is another replica).
        replica = self._placed(pool, model, model.size or 0)
        if replica is None or not await self._fetched(pool, replica, model, wanted):
            return
        estimate = await asyncio.to_thread(folder_size, self._server(pool, replica).folder.root / model.name)
        if estimate > pool.spec.capacity:
            await self._server(pool, replica).folder.remove(model.name)
            self._failed(model, str(_too_big(estimate, pool.spec)), pool.location(replica), pool, replica)
            return
        size = max(estimate, model.size or 0)
        better = self._placed(pool, model, size)
        if better is None:
            return
        if better is not replica:
            await self._server(pool, replica).folder.remove(model.name)
            replica = better
            if not await self._fetched(pool, replica, model, wanted):
                return
        await self._make_room(pool, replica, model.name, size)
        await self._loaded(pool, replica, model, wanted, estimate)

    def _placed(self, pool: Pool, model: _Model, size: int) -> Replica | None:
        """The replica a model of `size` bytes goes to (None, and the model failed, if none can hold it)."""
        try:
            placement = place(size, pool.rooms(self._last_used()), pinned={model.name})
        except DoesNotFit as exc:
            self._failed(model, str(exc), None, pool)
            return None
        return pool.replica(placement.replica)

    async def _fetched(
        self, pool: Pool, replica: Replica, model: _Model, wanted: WantedModel, failed: _Failed | None = None
    ) -> bool:
        """The model's files in the replica's folder, for the spec wanted (False: the fetch failed)."""
        server = self._server(pool, replica)
        if server.folder.fetched_digest(model.name) == wanted.digest:
            return True
        # A version that serves here stays loaded (and serving) until the new one's files are here.
        old_version_serves = model.name in pool.held.get(replica.address, {})
        try:
            if old_version_serves:
                await server.folder.fetch_aside(model.name, wanted, server.fetch)
            await server.repository.unload(model.name)  # an old version, if it is there
            server.held.pop(model.name, None)
            previous = pool.held.get(replica.address, {}).pop(model.name, None)
            if old_version_serves:
                await server.folder.swap_in(model.name, wanted, keep_previous=True)
                pool.set_aside.setdefault(replica.address, {})[model.name] = previous
            else:
                await server.folder.fill(model.name, wanted, server.fetch)
        except Exception as exc:  # noqa: BLE001 - a fetch that fails is the model's failure
            if model.name not in pool.held.get(replica.address, {}):
                await server.folder.remove(model.name)
            fetch_said = isinstance(exc, (FetchFailed, SchemaUnavailable))
            message = str(exc) if fetch_said else f"fetching the model failed: {exc}"
            (failed or self._failed)(model, message, pool.location(replica), pool, replica)
            return False
        return True

    async def _loaded(
        self,
        pool: Pool,
        replica: Replica,
        model: _Model,
        wanted: WantedModel,
        estimate: int,
        failed: _Failed | None = None,
    ) -> None:
        """Loads the fetched model; its size is what the replica's memory grew by, if more than its files."""
        server = self._server(pool, replica)
        location = pool.location(replica)
        before = replica_memory(replica)
        server.failures.pop(model.name, None)  # the retries are this controller's
        problem = await server.converge(model.name, wanted)
        if problem is not None:
            await server.converge(model.name, None)
            server.failures.pop(model.name, None)
            (failed or self._failed)(model, problem, location, pool, replica)
            return
        after = replica_memory(replica)
        grown = after - before if before is not None and after is not None else 0
        if replica.address not in pool.warmed:
            # A replica's first load also brings its framework's code into memory: the replica's, not the model's.
            pool.warmed.add(replica.address)
            grown = 0
        model.size = max(estimate, grown)
        server.folder.record_size(model.name, model.size)
        copy = HeldCopy(wanted.digest, model.size, replica.index, now_rfc3339())
        pool.held.setdefault(replica.address, {})[model.name] = copy
        model.active_revision = model.revision
        model.failure, model.failed_on, model.backoff = None, set(), 0.0
        logger.info(
            "%s/%s loaded on %s (%s: files %s, memory grown %s)",
            model.namespace,
            model.name,
            location,
            _size(model.size),
            _size(estimate),
            _size(grown),
        )
        self._on_routes()
        for name in over_capacity(_room(pool, replica, self._last_used()), keep={model.name}):
            await self._evict(pool, replica, name)
        for other in pool.holders(model.name):
            if pool.held[other.address][model.name].digest != wanted.digest:
                await self._evict(pool, other, model.name)  # an old version's copy

    async def _settle_set_aside(self, pool: Pool, model: _Model) -> None:
        """After a load: the old versions set aside for it are dropped where the new one loaded, and
        loaded again where it did not (ModelMesh keeps the old version serving when the new one fails)."""
        for address, set_aside in pool.set_aside.items():
            previous = set_aside.pop(model.name, None)
            replica = pool.replica(address)
            if previous is None or replica is None:
                continue
            server = self._server(pool, replica)
            if model.name in pool.held.get(address, {}):
                await server.folder.drop_previous(model.name)
                continue
            if not await server.folder.restore_previous(model.name, previous.digest):
                continue
            # Its files are there for its digest, so nothing is fetched: the URI is not needed.
            revision = model_revision_name(model.name, previous.digest)
            problem = await server.converge(model.name, WantedModel("", previous.digest, revision))
            location = pool.location(replica)
            if problem is not None:
                server.failures.pop(model.name, None)
                logger.warning(
                    "%s: the previous version of %s did not load again: %s", location, model.name, problem
                )
                await server.converge(model.name, None)
                continue
            server.folder.record_size(model.name, previous.size)
            pool.held.setdefault(address, {})[model.name] = replace(previous, loaded_at=now_rfc3339())
            logger.info(
                "%s/%s: the previous version serves again on %s", model.namespace, model.name, location
            )
            self._on_routes()

    async def _make_room(self, pool: Pool, replica: Replica, name: str, size: int) -> None:
        """Unloads the least recently used copies of a replica until `size` more bytes fit."""
        room = _room(pool, replica, self._last_used())
        try:
            placement = place(size, [room], pinned={name})
        except DoesNotFit:
            return  # what is left in use stays; the replica's memory limit has the last word
        for evicted in placement.evict:
            await self._evict(pool, replica, evicted)

    async def _evict(self, pool: Pool, replica: Replica, name: str, why: str = "to make room") -> None:
        """Takes a copy off a replica: out of the route first, then unloaded once its requests are done."""
        held = pool.held.get(replica.address, {}).pop(name, None)
        if held is None:
            return
        self._on_routes()
        model = self._models.get((pool.spec.namespace, name))
        if model is not None:
            await self._drained(model)
        problem = await self._server(pool, replica).converge(name, None)
        if problem is not None:
            logger.warning("%s: unloading %s failed: %s", pool.location(replica), name, problem)
        # A deleted service's model has no use to tell of.
        used = f" (last used {time.monotonic() - model.last_used:.1f}s ago)" if model is not None else ""
        logger.info(
            "%s/%s unloaded from %s %s%s", pool.spec.namespace, name, pool.location(replica), why, used
        )
        if model is not None:
            self._write_status(model)

    async def _drained(self, model: _Model) -> None:
        deadline = time.monotonic() + DRAIN_WAIT
        while time.monotonic() < deadline:
            stats = self._stats().get(model.backend)
            if stats is None or stats.in_flight == 0:
                return
            await asyncio.sleep(0.05)

    async def _take_off(self, name: str, pool: Pool, why: str) -> None:
        """Takes every copy of a model off a pool (its service is gone, or moved to another runtime)."""
        async with pool.lock:
            for replica in pool.holders(name):
                await self._evict(pool, replica, name, why)

    def _failed(
        self, model: _Model, message: str, location: str | None, pool: Pool, replica: Replica | None = None
    ) -> None:
        model.backoff = min(model.backoff * 2, RETRY_MAX) if model.backoff else RETRY_INITIAL
        model.retry_at = time.monotonic() + model.backoff
        model.failure = Failure(MODEL_LOAD_FAILED, message, time=now_rfc3339(), location=location)
        if replica is not None:
            model.failed_on.add(replica.address)
        logger.warning(
            "%s/%s failed to load (again on request after %.0fs): %s",
            model.namespace,
            model.name,
            model.backoff,
            message,
        )
        # The requests waiting are answered with the reason; after the back-off a request tries again.
        self._on_routes()
        asyncio.get_running_loop().call_later(model.backoff + 0.01, self._on_routes)

    # ---- copies for the load ----

    async def _watch_load(self) -> None:
        """Gives busy models more copies and takes the extra ones back when the load drops."""
        while True:
            await asyncio.sleep(LOAD_TICK)
            try:
                self._scale_copies()
            except Exception:
                logger.exception("looking at the ModelMesh models' load failed")

    def _scale_copies(self) -> None:
        self._note_use()
        stats = self._stats()
        now = time.monotonic()
        for model in list(self._models.values()):
            snapshot = stats.get(model.backend)
            pool = self._pools.get(model.pool) if model.pool else None
            if snapshot is None or pool is None or model.wanted is None:
                continue
            concurrency = model.scaler.observe(snapshot.taken_at, snapshot.concurrency_seconds)
            copies = len(pool.holders(model.name, model.wanted.digest))
            if concurrency is None or not copies or model.load or model.scaling:
                continue
            replicas = len(pool.ready_replicas())
            change = model.scaler.change(concurrency, copies, replicas, now, self.copy_grace_period)
            if change:
                work = self._add_copy(pool, model) if change > 0 else self._remove_copy(pool, model)
                model.scaling = self._spawn(work)

    async def _add_copy(self, pool: Pool, model: _Model) -> None:
        try:
            async with pool.lock:
                await self._learn_holdings(pool)
                wanted = model.wanted
                holders = {r.address for r in pool.holders(model.name, wanted.digest)} if wanted else set()
                if not holders:
                    return
                rooms = [
                    room for room in pool.rooms(self._last_used()) if room.address not in model.failed_on
                ]
                address = extra_copy_room(model.size or 0, rooms, holders)
                replica = pool.replica(address) if address else None
                if replica is None:
                    return  # no replica has room for it without unloading another model
                logger.info(
                    "%s/%s is busy: another copy on %s (%d before)",
                    model.namespace,
                    model.name,
                    pool.location(replica),
                    len(holders),
                )
                try:
                    if await self._fetched(pool, replica, model, wanted, failed=self._copy_failed):
                        await self._loaded(
                            pool, replica, model, wanted, model.size or 0, failed=self._copy_failed
                        )
                finally:
                    await self._settle_set_aside(pool, model)
        finally:
            model.scaling = None
            self._on_routes()
            self._write_status(model)

    async def _remove_copy(self, pool: Pool, model: _Model) -> None:
        try:
            async with pool.lock:
                wanted = model.wanted
                holders = {r.address for r in pool.holders(model.name, wanted.digest)} if wanted else set()
                address = surplus_copy(pool.rooms(self._last_used()), holders) if len(holders) > 1 else None
                replica = pool.replica(address) if address else None
                if replica is not None:
                    await self._evict(pool, replica, model.name, why="as its load no longer needs the copy")
        finally:
            model.scaling = None
            self._write_status(model)

    def _copy_failed(
        self, model: _Model, message: str, location: str | None, pool: Pool, replica: Replica | None = None
    ) -> None:
        """An extra copy that cannot be loaded: counted in `failedCopies`; the model serves on."""
        if replica is not None:
            model.failed_on.add(replica.address)
        logger.warning(
            "%s/%s: an extra copy failed to load on %s: %s", model.namespace, model.name, location, message
        )

    def _credentials(self, namespace: str) -> Callable[[], CredentialStore] | None:
        """What the namespace's models' `storage.key` resolves against, read at each fetch."""
        credentials = self.settings.credentials
        return functools.partial(credentials.for_namespace, namespace) if credentials else None

    def _server(self, pool: Pool, replica: Replica) -> ServerModels:
        server = self._servers.get(replica.address)
        if server is None:
            server = self._servers[replica.address] = ServerModels(
                RepositoryClient(self._client, f"http://{replica.address}"),
                ModelFolder(replica.model_repository),
                functools.partial(
                    fetch_model, log_path=replica.log_path, credentials=self._credentials(pool.spec.namespace)
                ),
                label=f"{pool.revision.name}-{replica.index}",
            )
        server.repository.load_timeout = _load_timeout(pool.spec)  # the runtime's, as it is now
        return server

    async def _learn_holdings(self, pool: Pool) -> None:
        """What each ready replica the pool has not asked yet holds: nothing, for a replica that just
        started (its folder starts empty), and what it held before, for one a restart of the platform in
        place took back. Its copies keep their sizes (recorded in its folder at each load). Called with
        the pool's lock held."""
        for replica in pool.ready_replicas():
            server = self._server(pool, replica)
            if server.recovered or not await server.recover():
                continue
            copies = pool.held.setdefault(replica.address, {})
            for name, digest in server.held.items():
                if name in copies:
                    continue
                size = server.folder.recorded_size(name)
                if size is None:
                    size = await asyncio.to_thread(folder_size, server.folder.root / name)
                copies[name] = HeldCopy(digest, size, replica.index, now_rfc3339())
                model = self._models.get((pool.spec.namespace, name))
                if model is not None and model.wanted is not None and model.wanted.digest == digest:
                    model.size = max(model.size or 0, size)
                    model.active_revision = model.revision
            if copies:
                pool.warmed.add(replica.address)
                logger.info("%s holds %s: kept", pool.location(replica), ", ".join(sorted(copies)))

    async def _held_learnt(self, key: PoolKey) -> None:
        pool = self._pools.get(key)
        if pool is None:
            return
        async with pool.lock:
            await self._learn_holdings(pool)
        self._on_routes()
        for model in self._models.values():
            if model.pool == key:
                self._write_status(model)

    # ---- how recently each model was used ----

    def _note_use(self) -> None:
        """When each model's last request arrived, as the gateway says."""
        stats = self._stats()
        for model in self._models.values():
            snapshot = stats.get(model.backend)
            if snapshot is not None:
                model.last_used = max(model.last_used, snapshot.last_request_at)

    def _last_used(self) -> dict[str, float]:
        return {model.name: model.last_used for model in self._models.values()}

    # ---- status ----

    def _write_status(self, model: _Model) -> None:
        if (model.namespace, model.name) not in self._models:
            return
        pool = self._pools.get(model.pool) if model.pool else None
        copies = active_copies = 0
        if pool is not None and model.wanted is not None:
            copies = len(pool.holders(model.name, model.wanted.digest))
            active_copies = len(pool.holders(model.name)) - copies
        state = MeshModelState(
            runtime=model.runtime,
            invalid=model.invalid,
            pool_ready=bool(pool and pool.ready_replicas()),
            revision=model.revision,
            active_revision=model.active_revision,
            copies=copies,
            active_copies=active_copies,
            loading=model.load is not None,
            failed_copies=len(model.failed_on),
            failure=model.failure,
            exit=model.exit,
            exit_revision=model.exit_revision,
            pool_failure=_pool_failure(pool),
        )
        ref = Ref(INFERENCE_SERVICE.kind, model.namespace, model.name)
        try:
            current = self.store.get(ref)
        except NotFound:
            return
        previous = current.get("status") or {}
        status = mesh_service_status(
            current,
            state,
            domain=self.settings.domain,
            port=self.settings.gateway_port,
            now=now_rfc3339(),
            previous=previous,
        )
        if status != previous:
            with contextlib.suppress(NotFound):
                self.store.set_status(ref, status)

    def _spawn(self, work) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _room(pool: Pool, replica: Replica, last_used: dict[str, float]):
    return next(room for room in pool.rooms(last_used) if room.address == replica.address)


def _size(size: int) -> str:
    """Bytes for the log: Mi, or Ki for what is smaller (an iris model's files are a few Ki)."""
    return f"{size / 1024**2:.1f}Mi" if size >= 1024**2 else f"{size / 1024:.1f}Ki"


def _too_big(size: int, spec: PoolSpec) -> DoesNotFit:
    return DoesNotFit(
        f"the model needs {size / 1024**2:.1f}Mi, more than a replica of runtime {spec.runtime} keeps "
        f"for models ({spec.capacity / 1024**2:.1f}Mi)"
    )


def _pool_failure(pool: Pool | None) -> Failure | None:
    """While no replica of a pool is ready: why its last one failed to start, or how its process last
    ended (a runtime whose command keeps exiting); None while it may just be starting."""
    if pool is None or pool.ready_replicas():
        return None
    state = pool.runner.state()
    if state.failure is not None:
        return replace(state.failure, reason=RUNTIME_UNHEALTHY)
    return exit_failure(state.last_termination) if state.last_termination is not None else None


def _load_timeout(spec: PoolSpec) -> tuple[float, str] | None:
    if spec.load_timeout is None:
        return None
    return spec.load_timeout, "the runtime's builtInAdapter.modelLoadingTimeoutMillis"


def _serves_models(runtimes: list[dict], name: str) -> bool:
    """Whether the runtime of that name is among `runtimes`, enabled and multi-model."""
    spec = next((r.get("spec") or {} for r in runtimes if r["metadata"]["name"] == name), None)
    return spec is not None and spec.get("disabled") is not True and spec.get("multiModel") is True
