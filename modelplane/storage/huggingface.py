"""hf://<owner>/<model>[:<revision>]: repositories of the Hugging Face Hub, through huggingface_hub.

`snapshot_download` puts the repository's files in the Hugging Face cache (`HF_HUB_CACHE`, else
`HF_HOME/hub`, else `~/.cache/huggingface/hub`), where transformers and every other Hub client look for
them, and answers the snapshot of one commit. The fetcher then links that snapshot into modelplane's
own cache like any other model. A machine that is offline (`HF_HUB_OFFLINE=1`) or cannot reach the
Hub uses the snapshot the Hugging Face cache already holds for the revision.

The token comes from the storage config (`hf_token`, or `HF_TOKEN` as KServe's secret names it), else
from `HF_TOKEN`, else from what huggingface_hub finds itself (a saved `hf auth login`). It is never
shown: messages are redacted like every other credential.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .config import StorageConfig
from .errors import (
    AccessDeniedError,
    ConfigurationError,
    NotFoundError,
    StorageError,
    TransferError,
    import_optional,
)
from .patterns import FileFilter
from .uri import Location

log = logging.getLogger("modelplane.storage")

_TRUE = {"1", "on", "yes", "true"}
_COMMIT = re.compile(r"[0-9a-f]{40}")


class HubUnreachable(TransferError):
    """The Hub cannot be reached, and the Hugging Face cache does not hold the revision."""


class NotInHubCache(NotFoundError):
    """Offline, and the Hugging Face cache does not hold the revision."""


@dataclass(frozen=True)
class HubSnapshot:
    """The files of one commit of a repository, in the Hugging Face cache."""

    folder: Path  # <cache>/models--<owner>--<name>/snapshots/<commit>
    commit: str
    files: tuple[str, ...]  # '/'-separated names inside `folder`, the ones the patterns keep


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps repositories, by the variables it reads (read now, not at import)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def offline() -> bool:
    """Whether the Hub must not be asked: `HF_HUB_OFFLINE` (or transformers' `TRANSFORMERS_OFFLINE`)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def hub_token(config: StorageConfig) -> str | None:
    return config.get("hf_token") or config.get("HF_TOKEN") or os.environ.get("HF_TOKEN") or None


def hub_endpoint(config: StorageConfig) -> str | None:
    """The Hub's address where it is not the public Hub: `endpoint_url`, else `HF_ENDPOINT`."""
    return config.setting("endpoint_url", "HF_ENDPOINT")


def snapshot(location: Location, config: StorageConfig, file_filter: FileFilter) -> HubSnapshot:
    """The repository's snapshot in the Hugging Face cache, downloaded first when the Hub can be reached.

    Raises `NotFoundError` (no such repository or revision; `NotInHubCache` offline),
    `AccessDeniedError` (a gated or private repository the token cannot read), or `TransferError`
    (`HubUnreachable`: the Hub cannot be reached and the cache does not hold the revision).
    """
    hub = import_optional("huggingface_hub", "hf")
    errors = import_optional("huggingface_hub.errors", "hf")
    cache_dir = hub_cache_dir()
    arguments: dict[str, Any] = {
        "repo_id": location.path,
        "revision": location.revision or None,
        "cache_dir": str(cache_dir),
        "token": hub_token(config),
        "endpoint": hub_endpoint(config),
        "allow_patterns": list(file_filter.allow) or None,
        "ignore_patterns": list(file_filter.ignore) or None,
    }
    where = location.display
    cached_only = offline()
    log.info(
        "fetching %s %s the Hugging Face cache %s",
        where,
        "from" if cached_only else "with huggingface_hub into",
        cache_dir,
    )
    try:
        try:
            folder = hub.snapshot_download(**arguments, local_files_only=cached_only)
        except Exception as exc:
            if cached_only or not _unreachable(errors, exc):
                raise
            # snapshot_download falls back to the cache by itself for a branch or tag, not for a commit.
            log.warning(
                "the Hub cannot be reached (%s); looking in the Hugging Face cache", type(exc).__name__
            )
            folder = hub.snapshot_download(**arguments, local_files_only=True)
    except Exception as exc:
        raise _explain(errors, exc, location, config, cache_dir, cached_only) from None
    folder = Path(folder)
    files = tuple(name for name in _files_under(folder) if file_filter.keeps(name))
    if not files:
        raise NotFoundError(f"{where}: no file of the repository matches the allow and ignore patterns")
    return HubSnapshot(folder, folder.name, files)


def _files_under(folder: Path) -> list[str]:
    """Every file of a snapshot (the cache's links to its blobs, or plain files), sorted."""
    names = []
    for root, _dirs, files in os.walk(folder, followlinks=True):
        for file in files:
            path = Path(root, file)
            if path.is_file():  # a dangling link is a file the cache lost: not part of the model
                names.append(path.relative_to(folder).as_posix())
    return sorted(names)


def _has_snapshot(cache_dir: Path, location: Location) -> bool:
    """Whether the Hugging Face cache has a snapshot folder for the revision's commit (a branch's or
    tag's: the commit its `refs/` file names)."""
    repository = cache_dir / ("models--" + location.path.replace("/", "--"))
    commit = location.revision or "main"
    if not _COMMIT.fullmatch(commit):
        ref = repository / "refs" / commit
        commit = ref.read_text().strip() if ref.is_file() else ""
    return bool(commit) and (repository / "snapshots" / commit).is_dir()


def _unreachable(errors: ModuleType, exc: BaseException) -> bool:
    """Whether the Hub could not be reached at all (as opposed to answering no)."""
    if isinstance(exc, errors.HfHubHTTPError):
        return exc.response is not None and exc.response.status_code >= 500
    return isinstance(exc, (*_transport_errors(), ConnectionError, TimeoutError))


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The connection failures of the HTTP clients huggingface_hub speaks through: httpx (1.x), or
    httpx2, its fork (2.x)."""
    found = []
    for name in ("httpx", "httpx2"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _explain(
    errors: ModuleType,
    exc: BaseException,
    location: Location,
    config: StorageConfig,
    cache_dir: Path,
    cached_only: bool,
) -> StorageError:
    where = location.display
    revision = location.revision or "main"
    if isinstance(exc, errors.GatedRepoError):
        return AccessDeniedError(
            f"{where}: the repository {location.path} is gated; accept its conditions on the Hub and give "
            "a token that may read it (hf_token in the storage config, or HF_TOKEN)"
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return NotFoundError(
            f"{where}: no repository {location.path} on the Hub, or it is private and the token cannot "
            "read it (hf_token in the storage config, or HF_TOKEN)"
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return NotFoundError(f"{where}: the repository {location.path} has no revision {revision!r}")
    if isinstance(exc, errors.LocalEntryNotFoundError):
        # A snapshot folder that is there all the same lacks files the patterns ask for: an earlier
        # fetch chose other files, or a download stopped part-way.
        incomplete = getattr(errors, "IncompleteSnapshotError", ())  # huggingface_hub 1.x and later
        if isinstance(exc, incomplete) or _has_snapshot(cache_dir, location):
            held = f"the Hugging Face cache {cache_dir} holds only part of {location.path} at revision {revision!r}"
        else:
            held = f"{location.path} at revision {revision!r} is not in the Hugging Face cache {cache_dir}"
        if cached_only:
            return NotInHubCache(f"{where}: {held}, and HF_HUB_OFFLINE forbids downloading it")
        return HubUnreachable(f"{where}: the Hub cannot be reached, and {held}")
    if isinstance(exc, errors.HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (401, 403):
            return AccessDeniedError(f"{where}: the Hub refused the token ({status})")
        if status >= 500 or status == 429:
            return HubUnreachable(f"{where}: the Hub answered {status}")
    if isinstance(exc, errors.HFValidationError):
        return ConfigurationError(f"{where}: {config.redact(str(exc))}")
    text = config.redact(f"{type(exc).__name__}: {exc}")
    return StorageError(f"fetching {where} failed: {text}")
