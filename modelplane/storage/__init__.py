"""Fetching models: local paths, pvc://, http(s)://, s3://, gs://, Azure Blob, hf:// (the Hugging Face Hub) and oci:// (images).

    from modelplane.storage import fetch

    folder = fetch("s3://models/iris")                      # a storageUri
    folder = fetch({"key": "minio", "path": "iris"})       # a storage spec
    fetch("gs://bucket/model.tar.gz", "/srv/models/iris")  # into a folder of your choice

Downloads are atomic, retried, checked, cached by URI and version, and done once per machine
even when several processes ask at the same time. See docs/storage.md.
"""

from .archive import Limits
from .cache import ModelCache
from .config import StorageConfig
from .errors import (
    AccessDeniedError,
    ArchiveError,
    ConfigurationError,
    InvalidURIError,
    MissingExtraError,
    NoSpaceError,
    NotFoundError,
    StorageError,
    TransferError,
)
from .fetcher import fetch
from .retry import RetryPolicy
from .spec import CredentialStore, Source, StorageSpec, resolve
from .transfer import TransferOptions
from .uri import Location, display_uri, parse_uri

__all__ = [
    "AccessDeniedError",
    "ArchiveError",
    "ConfigurationError",
    "CredentialStore",
    "InvalidURIError",
    "Limits",
    "Location",
    "MissingExtraError",
    "NoSpaceError",
    "ModelCache",
    "NotFoundError",
    "RetryPolicy",
    "Source",
    "StorageConfig",
    "StorageError",
    "StorageSpec",
    "TransferError",
    "TransferOptions",
    "display_uri",
    "fetch",
    "parse_uri",
    "resolve",
]
