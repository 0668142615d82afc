"""TorchServe model stores, served by modelplane: `config/config.properties` plus `model-store/*.mar`,
as KServe lays them out for its `kserve-torchserve` runtime. Each `.mar` is opened and its handler runs
in the replica's process with TorchServe's own Python handler API (the `ts` package); TorchServe's
Java frontend is not used."""

from __future__ import annotations

import logging
from pathlib import Path

from modelplane.runtimes.torchserve.store import StoreError, is_model_store, read_store
from modelplane.server.model import Model

__all__ = ["StoreError", "is_model_store", "store_models"]

logger = logging.getLogger("modelplane.server")


def store_models(folder: Path, nthread: int | None = None) -> list[Model]:
    """A model for each model a store serves: the default version of each name; `nthread`: torch's
    threads in the process."""
    from modelplane.runtimes.torchserve.handler_model import TorchServeModel

    store = read_store(folder)
    models: dict[str, Model] = {}
    for entry in store.models:
        if entry.name in models or not entry.is_default:
            logger.warning(
                "config.properties: model %s version %s is not served: modelplane serves one version of "
                "each model, its default",
                entry.name,
                entry.version,
            )
            continue
        models[entry.name] = TorchServeModel(entry, store, nthread)
    return list(models.values())
