"""The `storage` spec of a predictor, resolved against a store of named credentials.

    storage:
      key: localMinIO          # a document in the credentials store
      path: sklearn/iris       # the model's path inside the bucket or container
      parameters:              # fields that replace the document's own
        bucket: example-models

Without a `key`, KServe's default entry is read: `default_<type>` when the parameters name a `type`,
else `default`; that entry may be missing, as long as the parameters say the type.

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
    """`storage: {key, path, parameters}` of a predictor; `key` is None when the spec names none."""

    key: str | None = None
    path: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def config_key(self) -> str:
        """The entry of the storage config the spec reads, as KServe's credential builder picks it."""
        if self.key:
            return self.key
        kind = self.parameters.get("type")
        return f"{DEFAULT_KEY}_{kind}" if kind else DEFAULT_KEY

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
        return cls(key=spec.get("key") or None, path=spec.get("path") or "", parameters=parameters)


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
        found = self.find(key)
        if found is None:
            raise ConfigurationError(f"no storage config named {key!r} (looked in {self.places})")
        return found

    def find(self, key: str) -> StorageConfig | None:
        """Like `get`, with None where there is no document."""
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
        return None

    def without_document(self) -> StorageConfig:
        """The fields a spec gets where the store has no document for it: `STORAGE_OVERRIDE_CONFIG`'s."""
        return StorageConfig(env_document("STORAGE_OVERRIDE_CONFIG", self._environ))

    @property
    def places(self) -> str:
        """Where documents are looked for, as messages name them."""
        return f"{self._documents_from} and {self.folder}" if self._documents_from else str(self.folder)


def resolve(
    storage_uri: str | None = None,
    storage: StorageSpec | Mapping[str, Any] | None = None,
    *,
    store: CredentialStore | None = None,
) -> Source:
    """The source of a model given by `storageUri`, by a `storage` spec, or by both.

    With both, the URI says where the model is and the spec's key only supplies credentials; a spec
    that also gives a `path` is refused, as KServe refuses it.
    With a URI alone, credentials come from `STORAGE_CONFIG` (if set) and the environment.
    """
    if storage is None:
        if not storage_uri:
            raise ConfigurationError("a model needs a storageUri or a storage spec")
        return Source(parse_uri(storage_uri), StorageConfig.from_env())
    spec = storage if isinstance(storage, StorageSpec) else StorageSpec.from_dict(storage)
    if storage_uri and spec.path:
        # KServe's controller and ModelMesh Serving refuse it too: two places for one model.
        raise ConfigurationError(
            "must provide only one of storageUri and storage.path (a storageUri takes its credentials "
            "from storage.key and storage.parameters)"
        )
    store = store or CredentialStore()
    document = store.find(spec.config_key)
    if document is None:
        # KServe reads a spec without a key from its default entry, which may be missing: the
        # parameters then say all there is (the type, the bucket, the endpoint...).
        if spec.key or not (storage_uri or spec.parameters.get("type")):
            missing = f"no storage config named {spec.config_key!r} (looked in {store.places})"
            if not spec.key:
                missing += "; name one with storage.key, or give storage.parameters.type"
            raise ConfigurationError(missing)
        document = store.without_document()
    config = document.merged(spec.parameters)
    uri = storage_uri or _uri_for(spec, config)
    return Source(parse_uri(uri), config)


def _uri_for(spec: StorageSpec, config: StorageConfig) -> str:
    kind = (config.get("type") or "").lower()
    path = spec.path.strip("/")
    key = spec.config_key
    if kind in ("s3", "gs", "gcs"):
        bucket = config.get("bucket") or config.get("default_bucket")
        if not bucket:
            raise ConfigurationError(f"storage key {key!r} names no bucket; set storage.parameters.bucket")
        scheme = "s3" if kind == "s3" else "gs"
        return f"{scheme}://{bucket}/{path}"
    if kind == "azure":
        account, container = config.get("account_name"), config.get("container")
        if not account or not container:
            raise ConfigurationError(f"storage key {key!r} needs account_name and container")
        return f"https://{account}.blob.core.windows.net/{container}/{path}"
    if kind == "hf":
        return f"hf://{path}"
    if kind == "pvc":  # ModelMesh's: a claim, by name; on one machine, a folder
        name = config.get("name")
        if not name:
            raise ConfigurationError(f"storage key {key!r} has type pvc and no name (the claim's)")
        return f"pvc://{name}/{path}"
    if not kind:
        raise ConfigurationError(f"storage key {key!r} has no type")
    raise ConfigurationError(f"storage key {key!r} has type {kind!r}; supported: s3, gs, azure, hf, pvc")


def _read_document(path: Path, key: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        # The document holds credentials: never echo its content.
        raise ConfigurationError(f"storage config {key!r} ({path}) is not a readable JSON document") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"storage config {key!r} ({path}) must be a JSON object")
    return document
