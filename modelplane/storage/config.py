"""Storage configuration: the settings and credentials one backend uses for one fetch.

A `StorageConfig` holds the fields of a storage-config document (`type`, `bucket`, `endpoint_url`,
`access_key_id`, ...). A backend reads a field from it first and falls back to the environment
variable the same setting has always had (`AWS_ENDPOINT_URL`, `AZURE_STORAGE_ACCESS_KEY`, ...).
Every field that is not known to be harmless is treated as a secret: it is masked in `repr` and
scrubbed from every message the storage package produces.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import ConfigurationError

# Fields that are never credentials; every other field is masked.
PUBLIC_FIELDS = frozenset(
    {
        "type",
        "bucket",
        "default_bucket",
        "region",
        "endpoint_url",
        "anonymous",
        "verify_ssl",
        "ca_bundle",
        "addressing_style",
        "virtual_bucket",
        "use_accelerate",
        "account_name",
        "container",
        "project",
        "claim",
        "path",
    }
)

# Every field a backend reads from a document (or from a storage spec's parameters, which replace the
# document's own); docs/storage.md lists them.
READ_FIELDS = frozenset(
    {
        "type",
        "bucket",
        "default_bucket",
        # S3
        "endpoint_url",
        "region",
        "access_key_id",
        "secret_access_key",
        "anonymous",
        "verify_ssl",
        "ca_bundle",
        "addressing_style",
        "virtual_bucket",
        "use_accelerate",
        # GCS
        "base64_service_account",
        "service_account_json",
        # Azure Blob
        "account_name",
        "container",
        "sas_token",
        "connection_string",
        "account_key",
        # Hugging Face Hub
        "hf_token",
        "HF_TOKEN",
        # ModelMesh Serving's pvc type: the claim
        "name",
    }
)

# Environment variables that hold credentials, scrubbed from messages like secret fields.
SECRET_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
    "AZ_CLIENT_SECRET",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class StorageConfig(Mapping[str, str]):
    """An immutable storage-config document whose secrets never show in `repr` or messages."""

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        self._fields = {str(k): _as_text(v) for k, v in (fields or {}).items() if v is not None}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageConfig:
        """The document a platform passes in `STORAGE_CONFIG`, with `STORAGE_OVERRIDE_CONFIG` on top."""
        environ = os.environ if environ is None else environ
        fields = env_document("STORAGE_CONFIG", environ)
        fields.update(env_document("STORAGE_OVERRIDE_CONFIG", environ))
        return cls(fields)

    def merged(self, overrides: Mapping[str, Any] | None) -> StorageConfig:
        """A copy with `overrides` replacing fields of the same name."""
        return StorageConfig({**self._fields, **(overrides or {})})

    def setting(self, field: str, env: str | None = None, default: str | None = None) -> str | None:
        """The field, else the environment variable `env`, else `default`. Empty strings count as unset."""
        value = self._fields.get(field)
        if not value and env:
            value = os.environ.get(env)
        return value or default

    def flag(self, field: str, env: str | None = None, default: bool = False) -> bool:
        """A yes/no setting ("true", "1", "false", "0", ...), looked up like `setting`."""
        value = self.setting(field, env)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigurationError(f"storage setting {field!r} must be true or false, not {value!r}")

    def secrets(self) -> list[str]:
        """Every value that must not appear in a message: secret fields and credential variables."""
        values = [v for k, v in self._fields.items() if k not in PUBLIC_FIELDS]
        values += [os.environ[name] for name in SECRET_ENV if os.environ.get(name)]
        return [v for v in values if len(v) >= 4]

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `***`."""
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def __getitem__(self, key: str) -> str:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        shown = {k: (v if k in PUBLIC_FIELDS else "***") for k, v in self._fields.items()}
        return f"StorageConfig({shown})"


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def env_document(name: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON object in environment variable `name`, or an empty one."""
    text = (os.environ if environ is None else environ).get(name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        # The document usually holds credentials: never echo it.
        raise ConfigurationError(f"{name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{name} must be a JSON object")
    return value
