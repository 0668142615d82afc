"""The models a server holds, by name, and how they are loaded and unloaded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from modelplane.protocol.errors import ModelNotFound, ModelNotReady
from modelplane.protocol.model_schema import ModelSchema
from modelplane.server.model import Model, stage_runners
from modelplane.server.predictor_client import predictor_ready

logger = logging.getLogger("modelplane.server")

# Builds a model from its name when a client asks to load one that is not held yet. One with an
# `available()` method also says which names it can build: the repository index lists them.
ModelFactory = Callable[[str], Model]


class ServedModel:
    """A model with its stages prepared for calling, and why it failed to load if it did."""

    __slots__ = ("model", "stages", "load_error", "schema")

    def __init__(self, model: Model):
        self.model = model
        self.stages = stage_runners(model)
        self.load_error: str | None = None
        # The schema it was loaded with (a repository load's `schema`): its metadata's inputs and outputs.
        self.schema: ModelSchema | None = None


class ModelRepository:
    """The models a server holds. A multi-model repository is ready once the models it found at start
    are loaded (or failed to), however many it holds; the others are ready when every model is."""

    def __init__(self, factory: ModelFactory | None = None, *, multi_model: bool = False):
        self._served: dict[str, ServedModel] = {}
        # Models unloaded and not loaded again: the model to load again when no factory builds one.
        self._unloaded: dict[str, Model | None] = {}
        self._factory = factory
        self._load_lock = asyncio.Lock()
        self.multi_model = multi_model
        self.started = False  # the models there were at start have been loaded (or failed to)

    def add(self, model: Model, name: str | None = None) -> ServedModel:
        served = ServedModel(model)
        self._served[name or model.name] = served
        return served

    def __contains__(self, name: str) -> bool:
        return name in self._served

    def names(self) -> list[str]:
        return list(self._served)

    def get(self, name: str) -> ServedModel:
        served = self._served.get(name)
        if served is None:
            raise ModelNotFound(name)
        return served

    def get_ready(self, name: str) -> ServedModel:
        served = self._served.get(name)
        if served is None:
            raise ModelNotFound(name)
        if not served.model.ready:
            raise ModelNotReady(name, served.load_error)
        return served

    async def is_ready(self, name: str) -> bool:
        """Whether a model is ready; an unloaded one is not (ModelNotFound for a name never held)."""
        return await self.why_not_ready(name) is None

    async def why_not_ready(self, name: str) -> str | None:
        """Why a model is not ready, or None when it is (ModelNotFound for a name never held). A
        transformer told to check its predictor's health is ready when its predictor says it holds the
        model ready too."""
        if name in self._unloaded:
            return "It was unloaded."
        served = self.get(name)
        model = served.model
        if not await model.healthy():
            return served.load_error or "It is not healthy."
        if model.predictor_health_check and not await predictor_ready(model):
            return f"Its predictor {model.predictor_host} does not have it ready."
        return None

    async def check_ready(self, name: str) -> None:
        """ModelNotReady, with the reason, for a model that is not ready (ModelNotFound for a name not
        held)."""
        why = await self.why_not_ready(name)
        if why is not None:
            self.get_ready(name)  # its own error, with the reason its load failed
            raise ModelNotReady(name, why)

    async def not_ready_reason(self) -> str | None:
        """Why the server is not ready, or None when it is. A server whose models were unloaded on
        request is ready, as KServe's server without models is: it stays where clients reach it, so
        that a load through the same route brings them back."""
        if self.multi_model:
            return None if self.started else "loading the models found at start"
        names = self.names()
        not_ready = [name for name in names if not await self.is_ready(name)]
        if not_ready:
            return f"models not ready: {', '.join(not_ready)}"
        return None if names or self._unloaded else "no models are loaded"

    def items(self) -> list[tuple[str, ServedModel]]:
        return list(self._served.items())

    def unloaded(self) -> list[str]:
        """The models unloaded and not loaded again, which a load brings back."""
        return list(self._unloaded)

    def never_loaded(self) -> list[str]:
        """The models the factory can build that are neither held nor unloaded."""
        available = getattr(self._factory, "available", None)
        if available is None:
            return []
        return [name for name in available() if name not in self._served and name not in self._unloaded]

    async def load(
        self, name: str, model_id: str | None = None, schema: ModelSchema | None = None
    ) -> ServedModel:
        """Load (or reload) a model by name; ModelNotReady says why if it fails. A model that was
        unloaded is loaded again, as Triton does, whether or not the server has a folder of models.
        `model_id`: the id the model answers as (its responses' `model_name`), requests still naming it
        `name`, as a ModelMesh runtime answers with the concrete id it loaded the model under.
        `schema`: the inputs and outputs its metadata gives, as a ModelMesh runtime adapter makes them."""
        async with self._load_lock:
            served = self._served.get(name)
            if served is None:
                served = self.add(self._build(name), name)
                self._unloaded.pop(name, None)
            if model_id:
                served.model.name = model_id
            served.schema = schema
            await load_model(served)
            if not served.model.ready:
                raise ModelNotReady(name, served.load_error)
            return served

    def _build(self, name: str) -> Model:
        """A model not held: the factory's, or else the one unloaded under that name."""
        kept = self._unloaded.get(name)
        if self._factory is not None:
            try:
                return self._factory(name)
            except LookupError as exc:
                if kept is None:
                    raise ModelNotFound(name, str(exc)) from None
        if kept is None:
            raise ModelNotFound(name, f"Model with name {name} is not in the repository.")
        return kept

    async def unload(self, name: str) -> None:
        served = self._served.pop(name, None)
        if served is None:
            raise ModelNotFound(name)
        served.model.ready = False
        # A factory builds the model afresh (what `stop` released need not be held meanwhile).
        self._unloaded[name] = None if self._factory is not None else served.model
        await asyncio.to_thread(served.model.stop)

    async def unload_all(self) -> None:
        for name in list(self._served):
            try:
                await self.unload(name)
            except Exception:  # noqa: BLE001 - shutting down: log and carry on with the others
                logger.exception("unloading model %s failed", name)


async def load_model(served: ServedModel) -> None:
    """Run a model's `load` on a thread; a failure leaves it not ready, with the reason kept."""
    model = served.model
    try:
        result = await _on_daemon_thread(model.load, f"load {model.name}")
        if asyncio.iscoroutine(result):
            result = await result
        if result is False:
            model.ready = False
        served.load_error = None if model.ready else "load() did not make the model ready"
    except Exception as exc:  # noqa: BLE001 - the server stays up and reports why
        model.ready = False
        served.load_error = f"Failed to load: {type(exc).__name__}: {exc}"
        logger.error("model %s failed to load: %s", model.name, served.load_error)
    else:
        if model.ready:
            logger.info("model %s is ready", model.name)
    # Stage dispatch depends on the methods the loaded model exposes.
    served.stages = stage_runners(model)


async def start_model(served: ServedModel) -> None:
    """Run a loaded model's `start` on a thread, as KServe's server calls it once at its start; a
    failure leaves the model not ready, with the reason kept."""
    model = served.model
    try:
        await asyncio.to_thread(model.start)
    except Exception as exc:  # noqa: BLE001 - the server stays up and reports why
        model.ready = False
        served.load_error = f"Failed to start: {type(exc).__name__}: {exc}"
        logger.error("model %s failed to start: %s", model.name, served.load_error)


async def _on_daemon_thread(function: Callable[[], Any], name: str) -> Any:
    """`function()` on a thread of its own that does not hold the process up when it exits: a server
    told to stop while a model is still loading stops at once instead of waiting for the load."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            outcome = (function(), None)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
