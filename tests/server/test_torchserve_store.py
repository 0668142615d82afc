"""What a TorchServe model store declares, read from its config.properties and from the model config
each archive carries (`torch-model-archiver --config-file`), without loading any model."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import pytest

from modelplane.runtimes.torchserve.store import StoreError, read_store


def write_archive(store: Path, name: str, model_config: str | None = None) -> Path:
    """A .mar holding a manifest (and, when given, a model-config.yaml it names), as
    torch-model-archiver writes them."""
    store.mkdir(parents=True, exist_ok=True)
    model = {"modelName": name, "modelVersion": "1.0", "handler": "base_handler"}
    if model_config is not None:
        model["configFile"] = "model-config.yaml"
    archive = store / f"{name}.mar"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("MAR-INF/MANIFEST.json", json.dumps({"runtime": "python", "model": model}))
        if model_config is not None:
            zf.writestr("model-config.yaml", model_config)
    return archive


def write_properties(folder: Path, **properties: str) -> None:
    config = folder / "config" / "config.properties"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))


def snapshot(**models: dict) -> str:
    return json.dumps({"name": "startup.cfg", "modelCount": len(models), "models": models})


ARCHIVE_CONFIG = "minWorkers: 2\nmaxWorkers: 2\nbatchSize: 4\nmaxBatchDelay: 50\nresponseTimeout: 7\n"


def test_the_archive_s_model_config_sets_workers_batching_and_timeout(tmp_path):
    write_archive(tmp_path / "model-store", "m", ARCHIVE_CONFIG)
    write_properties(tmp_path, load_models="all")
    (model,) = read_store(tmp_path, environ={}).models
    assert (model.workers, model.batch_size, model.max_batch_delay, model.response_timeout) == (2, 4, 0.05, 7)


def test_the_archive_s_model_config_wins_over_a_models_entry_as_in_torchserve(tmp_path):
    write_archive(tmp_path / "model-store", "m", "batchSize: 4\n")
    write_properties(tmp_path, models=json.dumps({"m": {"1.0": {"batchSize": 2, "minWorkers": 3}}}))
    (model,) = read_store(tmp_path, environ={}).models
    assert (model.batch_size, model.workers) == (4, 3)


def test_a_snapshot_s_entry_wins_over_the_archive_s_model_config(tmp_path):
    write_archive(tmp_path / "model-store", "m", ARCHIVE_CONFIG)
    write_properties(tmp_path, model_snapshot=snapshot(m={"1.0": {"marName": "m.mar", "batchSize": 1}}))
    (model,) = read_store(tmp_path, environ={}).models
    assert (model.batch_size, model.workers, model.response_timeout) == (1, 2, 7)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"minWorkers": "abc"}, "minWorkers must be a number, not 'abc'"),
        ({"batchSize": 2.5}, "batchSize must be a whole number"),
        ({"responseTimeout": -1}, "responseTimeout must be a positive number"),
        ({"maxBatchDelay": True}, "maxBatchDelay must be a number"),
    ],
)
def test_a_setting_that_is_not_a_fitting_number_is_refused_by_name(tmp_path, entry, message):
    write_archive(tmp_path / "model-store", "m")
    write_properties(tmp_path, model_snapshot=snapshot(m={"1.0": {"marName": "m.mar", **entry}}))
    with pytest.raises(StoreError, match=f"model 'm': {message}"):
        read_store(tmp_path, environ={})


def test_an_archive_s_bad_model_config_is_refused_by_name(tmp_path):
    write_archive(tmp_path / "model-store", "m", "batchSize: many\n")
    write_properties(tmp_path, load_models="all")
    with pytest.raises(StoreError, match="m.mar: model 'm': its model config: batchSize must be a number"):
        read_store(tmp_path, environ={})


def test_settings_not_acted_on_are_warned_about(tmp_path, caplog):
    write_archive(tmp_path / "model-store", "m", "deviceType: gpu\nhandler:\n  topk: 1\n")
    entry = {"marName": "m.mar", "startupTimeout": 60, "maxBatchdelay": 5}
    write_properties(tmp_path, model_snapshot=snapshot(m={"1.0": entry}))
    with caplog.at_level(logging.WARNING, logger="modelplane.server"):
        read_store(tmp_path, environ={})
    warnings = "\n".join(record.getMessage() for record in caplog.records)
    assert "model 'm': not used by modelplane: startupTimeout" in warnings
    assert "model 'm': unknown settings, not used: maxBatchdelay" in warnings
    assert "its model config sets deviceType, which modelplane does not use" in warnings
    assert "handler" not in warnings  # the handler's own section is the handler's to read


def test_load_models_picks_the_archives_and_models_gives_their_settings(tmp_path):
    for name in ("a", "b", "c"):
        write_archive(tmp_path / "model-store", name)
    settings = {"a": {"1.0": {"batchSize": 3}}, "c": {"1.0": {"batchSize": 5}}}
    write_properties(tmp_path, load_models="all", models=json.dumps(settings))
    served = {model.name: model.batch_size for model in read_store(tmp_path, environ={}).models}
    assert served == {"a": 3, "b": 1, "c": 5}

    write_properties(tmp_path, load_models="a.mar", models=json.dumps(settings))
    assert [(model.name, model.batch_size) for model in read_store(tmp_path, environ={}).models] == [("a", 3)]


def test_models_without_load_models_are_the_models_served(tmp_path):
    for name in ("a", "b"):
        write_archive(tmp_path / "model-store", name)
    write_properties(tmp_path, models=json.dumps({"a": {"1.0": {"marName": "a.mar", "batchSize": 3}}}))
    assert [(model.name, model.batch_size) for model in read_store(tmp_path, environ={}).models] == [("a", 3)]


@pytest.mark.parametrize(
    ("versions", "served"),
    [
        # No version says it is the default: the first registered is, as in TorchServe.
        ({"1.0": {"defaultVersion": False}, "2.0": {"defaultVersion": False}}, "1.0"),
        ({"1.0": {}, "2.0": {}}, "1.0"),
        # Gson reads the text "false" as false, and the last version saying true wins.
        ({"1.0": {"defaultVersion": "false"}, "2.0": {"defaultVersion": True}}, "2.0"),
        ({"1.0": {"defaultVersion": True}, "2.0": {"defaultVersion": "TRUE"}}, "2.0"),
        ({"1.0": {"defaultVersion": True}, "2.0": {"defaultVersion": 1}}, "1.0"),
    ],
)
def test_each_model_has_one_default_version_as_torchserve_settles_it(tmp_path, versions, served):
    write_archive(tmp_path / "model-store", "m")
    entries = {version: {"marName": "m.mar", **entry} for version, entry in versions.items()}
    write_properties(tmp_path, model_snapshot=snapshot(m=entries))
    defaults = [model.version for model in read_store(tmp_path, environ={}).models if model.is_default]
    assert defaults == [served]
