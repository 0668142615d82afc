"""Remote storage backends, one module each; their libraries are imported only when used."""

from __future__ import annotations

from ..config import StorageConfig
from ..uri import Location
from .base import Backend, RemoteObject


def open_backend(location: Location, config: StorageConfig) -> Backend:
    """The backend for a remote location (http, s3, gs or azure)."""
    if location.kind == "s3":
        from .s3 import S3Backend

        return S3Backend(location, config)
    if location.kind == "gs":
        from .gcs import GCSBackend

        return GCSBackend(location, config)
    if location.kind == "azure":
        from .azure import AzureBackend

        return AzureBackend(location, config)
    if location.kind == "http":
        from .http import HTTPBackend

        return HTTPBackend(location, config)
    raise ValueError(f"{location.kind} is not a remote location")


__all__ = ["Backend", "RemoteObject", "open_backend"]
