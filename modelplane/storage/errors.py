"""What can go wrong while fetching a model, as exceptions a caller can tell apart."""

from __future__ import annotations

import importlib
from types import ModuleType


class StorageError(Exception):
    """A model could not be fetched. The message is safe to show: it never holds a credential."""


class InvalidURIError(StorageError):
    """The storage URI is malformed or names a scheme modelplane does not know."""


class ConfigurationError(StorageError):
    """The storage spec, its credentials or the destination are missing or invalid."""


class NotFoundError(StorageError):
    """The bucket, container, object, file or folder does not exist."""


class AccessDeniedError(StorageError):
    """The storage refused the credentials, or anonymous access."""


class TransferError(StorageError):
    """The transfer failed after its retries, or its bytes did not match what the storage announced."""


class ArchiveError(StorageError):
    """An archive is corrupt or unsafe to unpack (path traversal, link escape, device file, bomb)."""


class NoSpaceError(StorageError):
    """The model could not be written: the disk is full (or the file is larger than this process may
    write). Nothing of it is kept."""


class MissingExtraError(StorageError):
    """The library a backend needs is not installed."""


def import_optional(module: str, extra: str) -> ModuleType:
    """Import a backend's library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f'{module} is not installed; install it with: pip install "modelplane[{extra}]"'
        ) from exc
