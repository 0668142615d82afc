"""The `storage` spec of a predictor, resolved against a store of named credentials.

    storage:
      key: localMinIO          # a document in the credentials store
      path: sklearn/iris       # the model's path inside the bucket or container
      parameters:              # fields that replace the document's own
        bucket: example-models

`resolve` turns it (or a plain storageUri) into a `Source`: a URI plus the `StorageConfig` its backend
uses. The credentials store is a folder with one JSON document per key, the way a mounted
storage-config secret looks; KServe's `STORAGE_CONFIG` environment variable is accepted too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .config import StorageConfig, env_document
from .errors import ConfigurationError
from .uri import Location, parse_uri

DEFAULT_KEY = "default"

_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class StorageSpec:
    """`storage: {key, path, parameters}` of a predictor."""

    key: str = DEFAULT_KEY
    path: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> StorageSpec:
        if not isinstance(spec, Mapping):
            raise ConfigurationError("the storage spec must be a mapping with key, path and parameters")
        unknown = set(spec) - {"key", "path", "parameters", "schemaPath"}
        if unknown:
            raise ConfigurationError(f"unknown field(s) in the storage spec: {', '.join(sorted(unknown))}")
        parameters = spec.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise ConfigurationError("storage.parameters must be a mapping")
        return cls(key=spec.get("key") or DEFAULT_KEY, path=spec.get("path") or "", parameters=parameters)


@dataclass(frozen=True)
class Source:
    """A resolved model source: where it is and how to reach it."""

    location: Location
    config: StorageConfig = field(default_factory=StorageConfig)

    @property
    def uri(self) -> str:
        return self.location.uri


class CredentialStore:
    """Named storage configs: `documents` given by the caller (a platform's storage-config Secret,
    described by `documents_from`), then `<folder>/<key>.json` (or `<folder>/<key>`, as a mounted
    secret has it)."""

    def __init__(
        self,
        folder: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        documents: Mapping[str, Mapping[str, Any]] | None = None,
        documents_from: str = "",
    ) -> None:
        self.folder = Path(folder).expanduser() if folder else paths.credentials_dir()
        self._environ = os.environ if environ is None else environ
        self._documents = dict(documents or {})
        self._documents_from = documents_from

    def get(self, key: str) -> StorageConfig:
        """The document stored under `key`; if there is none, the one in `STORAGE_CONFIG`."""
        if not _KEY.match(key):
            raise ConfigurationError(f"{key!r} is not a valid storage key")
        overrides = env_document("STORAGE_OVERRIDE_CONFIG", self._environ)
        if key in self._documents:
            return StorageConfig(self._documents[key]).merged(overrides)
        for candidate in (self.folder / key, self.folder / f"{key}.json"):
            if candidate.is_file():
                return StorageConfig(_read_document(candidate, key)).merged(overrides)
        if self._environ.get("STORAGE_CONFIG"):
            return StorageConfig.from_env(self._environ)
        places = f"{self._documents_from} and {self.folder}" if self._documents_from else str(self.folder)
        raise ConfigurationError(f"no storage config named {key!r} (looked in {places})")


def resolve(
    storage_uri: str | None = None,
    storage: StorageSpec | Mapping[str, Any] | None = None,
    *,
    store: CredentialStore | None = None,
) -> Source:
    """The source of a model given by `storageUri`, by a `storage` spec, or by both.

    With both, the URI says where the model is and the spec's key only supplies credentials.
    With a URI alone, credentials come from `STORAGE_CONFIG` (if set) and the environment.
    """
    if storage is None:
        if not storage_uri:
            raise ConfigurationError("a model needs a storageUri or a storage spec")
        return Source(parse_uri(storage_uri), StorageConfig.from_env())
    spec = storage if isinstance(storage, StorageSpec) else StorageSpec.from_dict(storage)
    config = (store or CredentialStore()).get(spec.key).merged(spec.parameters)
    uri = storage_uri or _uri_for(spec, config)
    return Source(parse_uri(uri), config)


def _uri_for(spec: StorageSpec, config: StorageConfig) -> str:
    kind = (config.get("type") or "").lower()
    path = spec.path.strip("/")
    if kind in ("s3", "gs", "gcs"):
        bucket = config.get("bucket") or config.get("default_bucket")
        if not bucket:
            raise ConfigurationError(
                f"storage key {spec.key!r} names no bucket; set storage.parameters.bucket"
            )
        scheme = "s3" if kind == "s3" else "gs"
        return f"{scheme}://{bucket}/{path}"
    if kind == "azure":
        account, container = config.get("account_name"), config.get("container")
        if not account or not container:
            raise ConfigurationError(f"storage key {spec.key!r} needs account_name and container")
        return f"https://{account}.blob.core.windows.net/{container}/{path}"
    if kind == "hf":
        return f"hf://{path}"
    if kind == "pvc":  # ModelMesh's: a claim, by name; on one machine, a folder
        name = config.get("name")
        if not name:
            raise ConfigurationError(f"storage key {spec.key!r} has type pvc and no name (the claim's)")
        return f"pvc://{name}/{path}"
    if not kind:
        raise ConfigurationError(f"storage key {spec.key!r} has no type")
    raise ConfigurationError(f"storage key {spec.key!r} has type {kind!r}; supported: s3, gs, azure, hf, pvc")


def _read_document(path: Path, key: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        # The document holds credentials: never echo its content.
        raise ConfigurationError(f"storage config {key!r} ({path}) is not a readable JSON document") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"storage config {key!r} ({path}) must be a JSON object")
    return document
