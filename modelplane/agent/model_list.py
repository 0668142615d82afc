"""KServe's list of a multi-model server's models, `models.json`, as its model agent reads it:

[{"modelName": "iris", "modelSpec": {"storageUri": "s3://...", "framework": "sklearn", "memory": "128Mi"}}]
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

MODELS_FILE = "models.json"
# A TrainedModel's name (KServe's rule), which is also what makes it safe as a folder name.
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")


@dataclass(frozen=True)
class WantedModel:
    """A model a server is to hold: where it is fetched from, and the digest of the spec it comes from
    (a changed spec is fetched and loaded again)."""

    storage_uri: str
    digest: str
    # The id the model answers as, where it is not its name (ModelMesh's `<name>__isvc-<digest>`).
    model_id: str = ""
    # Where its schema file is fetched from, as `storage_uri` says where the model is ("": it has none):
    # ModelMesh's `schemaPath`, the inputs and outputs of its metadata.
    schema_uri: str = ""


class ModelListError(ValueError):
    """A models.json that is not a JSON list."""


def spec_digest(spec: Mapping) -> str:
    """What changes when a model's spec changes."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def listed_model(name: str, spec: Mapping) -> dict:
    """A model's entry in the list."""
    return {"modelName": name, "modelSpec": dict(spec)}


def parse_model_list(text: str | bytes) -> tuple[dict[str, WantedModel], list[str]]:
    """The models a models.json lists, by name, and why each entry that cannot be used is left out
    (raises ModelListError when the document is not a JSON list)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ModelListError(f"not JSON: {exc}") from None
    if not isinstance(document, list):
        raise ModelListError(f"a list of models was expected, not a JSON {type(document).__name__}")
    models: dict[str, WantedModel] = {}
    skipped: list[str] = []
    for index, entry in enumerate(document):
        name = entry.get("modelName") if isinstance(entry, dict) else None
        spec = entry.get("modelSpec") if isinstance(entry, dict) else None
        uri = spec.get("storageUri") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not _NAME.match(name):
            skipped.append(f"entry {index}: modelName {name!r} is not a TrainedModel name ({_NAME.pattern})")
        elif not isinstance(uri, str) or not uri:
            skipped.append(f"model {name}: modelSpec.storageUri is missing")
        elif name in models:
            skipped.append(f"model {name}: listed twice (the first one is kept)")
        else:
            models[name] = WantedModel(uri, spec_digest(spec))
    return models, skipped
