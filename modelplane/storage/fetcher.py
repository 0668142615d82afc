"""`fetch`: from a storageUri or storage spec to a local folder holding the model.

    listing ──> version ──> cache hit? ──yes──> the cached folder
                                │no (one process at a time per model)
                                └─> download into a staging folder ──> unpack a lone archive
                                    ──> rename into the cache ──> the cached folder

A local folder is used where it is. An hf:// repository is downloaded by huggingface_hub into the
Hugging Face cache, and its snapshot linked into modelplane's cache under its commit. An oci:// image's
/models folder is cached under the image's digest. With `dest`, the
model is then linked (or copied) into `dest`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from . import huggingface
from .archive import Limits, is_archive, unpack
from .backends import Backend, RemoteObject, open_backend
from .backends.base import check_names, server_address
from .backends.local import LocalFileBackend, local_path
from .backends.pvc import claim_path
from .cache import ModelCache
from .disk import is_out_of_space, out_of_space
from .errors import ConfigurationError, NoSpaceError, NotFoundError, TransferError
from .image_layers import image_models
from .oci_registry import Registry
from .patterns import FileFilter
from .progress import LogProgress, Progress
from .spec import CredentialStore, Source, StorageSpec, resolve
from .transfer import TransferOptions, download
from .uri import Location

log = logging.getLogger("modelplane.storage")


def fetch(
    source: str | StorageSpec | Mapping[str, Any] | Source,
    dest: str | Path | None = None,
    *,
    store: CredentialStore | None = None,
    cache: ModelCache | None = None,
    use_cache: bool = True,
    options: TransferOptions | None = None,
    limits: Limits | None = None,
    progress: Progress | None = None,
    pvc_root: str | Path | None = None,
    allow_patterns: Sequence[str] | None = None,
    ignore_patterns: Sequence[str] | None = None,
) -> Path:
    """Fetch a model and return the local folder that holds it.

    `source` is a storage URI, a `storage` spec (`{key, path, parameters}`), or a resolved `Source`.
    Without `dest` the folder is the cache entry (or a local folder itself); with `dest` the model is
    placed in `dest`, which must not exist or be empty. `use_cache=False` downloads straight into `dest`.
    Allow and ignore patterns (default: `STORAGE_ALLOW_PATTERNS`, `STORAGE_IGNORE_PATTERNS`) choose the
    files of a remote folder to fetch.
    """
    if not isinstance(source, Source):
        source = (
            resolve(source, None, store=store)
            if isinstance(source, str)
            else resolve(None, source, store=store)
        )
    location = source.location
    if dest is None and not use_cache:
        raise ValueError("use_cache=False needs a dest")
    if dest is not None:
        _check_free(Path(dest))  # before anything is fetched
    if use_cache:
        cache = cache or ModelCache()
    try:
        return _fetch(
            source,
            Path(dest) if dest is not None else None,
            cache=cache if use_cache else None,
            options=options,
            limits=limits,
            progress=progress,
            pvc_root=pvc_root,
            file_filter=FileFilter.of(allow_patterns, ignore_patterns),
        )
    except (OSError, NoSpaceError) as exc:
        if not is_out_of_space(exc):
            raise
        where = Path(dest).absolute().parent if dest is not None else cache.root
        raise out_of_space(location.display, where, exc) from None


def _fetch(
    source: Source,
    dest: Path | None,
    *,
    cache: ModelCache | None,
    options: TransferOptions | None,
    limits: Limits | None,
    progress: Progress | None,
    pvc_root: str | Path | None,
    file_filter: FileFilter,
) -> Path:
    location = source.location
    if location.kind in ("local", "pvc"):
        path = local_path(location, claim_path(location, pvc_root) if location.kind == "pvc" else None)
        if path.is_dir():
            return path if dest is None else place(path, dest)
        backend: Backend = LocalFileBackend(location, source.config, path)
    elif location.kind == "hf":
        return _fetch_hub(source, dest, cache=cache, file_filter=file_filter)
    elif location.kind == "oci":
        return _fetch_image(location, dest, cache=cache, limits=limits or Limits.from_env())
    else:
        backend = open_backend(location, source.config)
    with closing(backend):
        return _fetch_remote(
            backend,
            dest,
            cache=cache,
            options=options or TransferOptions.from_env(),
            limits=limits or Limits.from_env(),
            progress=progress or LogProgress(),
            file_filter=file_filter,
        )


def _fetch_remote(
    backend: Backend,
    dest: Path | None,
    *,
    cache: ModelCache | None,
    options: TransferOptions,
    limits: Limits,
    progress: Progress,
    file_filter: FileFilter,
) -> Path:
    location = backend.location
    try:
        objects = options.retry.call(
            backend.list_objects, backend.is_transient, f"listing {location.display}"
        )
    except Exception as exc:
        if not backend.is_transient(exc):
            raise backend.explain(exc) from None
        return _fetched_before(
            location,
            backend.endpoint(),
            f"{location.display} is unreachable",
            cache,
            dest,
            backend.explain(exc),
            file_filter,
        )
    if file_filter and not backend.names_one_object(objects):
        objects = file_filter.apply(objects)
        if not objects:
            raise NotFoundError(f"no file at {location.display} matches the allow and ignore patterns")
    check_names(objects, location.display)

    def build(folder: Path) -> None:
        _download_model(backend, objects, folder, options=options, limits=limits, progress=progress)

    record = {"uri": location.display, "objects": [[o.name, o.size, o.version] for o in objects]}
    return _built(location, backend.endpoint(), _version(objects), build, record, cache, dest, file_filter)


def _fetch_hub(
    source: Source, dest: Path | None, *, cache: ModelCache | None, file_filter: FileFilter
) -> Path:
    location = source.location
    hub = huggingface.hub_endpoint(source.config)
    endpoint = server_address(hub) if hub else ""  # a mirror's copy is not the public Hub's
    try:
        snapshot = huggingface.snapshot(location, source.config, file_filter)
    except (huggingface.HubUnreachable, huggingface.NotInHubCache) as exc:
        return _fetched_before(location, endpoint, str(exc), cache, dest, exc, file_filter)
    log.info("%s is commit %s in the Hugging Face cache", location.display, snapshot.commit)

    def build(folder: Path) -> None:
        for name in snapshot.files:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(os.path.realpath(snapshot.folder / name), str(target))

    version = hashlib.sha256(json.dumps([snapshot.commit, snapshot.files]).encode()).hexdigest()
    record = {"uri": location.display, "commit": snapshot.commit, "files": list(snapshot.files)}
    return _built(location, endpoint, version, build, record, cache, dest, file_filter)


def _fetch_image(location: Location, dest: Path | None, *, cache: ModelCache | None, limits: Limits) -> Path:
    """An OCI image's /models folder (a KServe modelcar), cached under its manifest's digest."""
    with closing(Registry(location)) as registry:
        try:
            image = registry.image()
        except TransferError as exc:
            return _fetched_before(location, "", str(exc), cache, dest, exc)
        log.info("%s is image %s (%d layers)", location.display, image.digest, len(image.layers))

        def build(folder: Path) -> None:
            blobs = folder.with_name(folder.name + ".layers")
            blobs.mkdir()
            try:
                paths = []
                for index, layer in enumerate(image.layers):
                    paths.append(blobs / str(index))
                    registry.download(layer, paths[-1])
                image_models(paths, folder, limits, location.display)
            finally:
                shutil.rmtree(blobs, ignore_errors=True)

        record = {"uri": location.display, "digest": image.digest, "layers": [x.digest for x in image.layers]}
        return _built(location, "", image.digest, build, record, cache, dest)


def _built(
    location: Location,
    endpoint: str,
    version: str,
    build: Callable[[Path], None],
    record: dict[str, Any],
    cache: ModelCache | None,
    dest: Path | None,
    file_filter: FileFilter | None = None,
) -> Path:
    """The model `build` makes: from the cache at `version` (made there once), or straight into `dest`.
    `endpoint` is the server the URI was fetched from where the URI does not name it, else ""."""
    if cache is None:
        assert dest is not None
        return _staged(dest, build)
    hit = cache.lookup(location.uri, version, endpoint)
    if hit is not None:
        log.info("%s is cached at %s", location.display, hit)
    if endpoint:
        record = {**record, "endpoint": endpoint}
    if file_filter:
        record = {**record, "patterns": file_filter.as_record()}
    model = hit or cache.fill(location.uri, version, build, record, endpoint)
    return model if dest is None else place(model, dest)


def _fetched_before(
    location: Location,
    endpoint: str,
    why: str,
    cache: ModelCache | None,
    dest: Path | None,
    failure: Exception,
    file_filter: FileFilter | None = None,
) -> Path:
    """The copy of a model the cache kept from the same server with the same allow and ignore patterns,
    when that server cannot be reached; else `failure`."""
    patterns = file_filter.as_record() if file_filter else None
    stale = cache.latest(location.uri, endpoint, patterns) if cache is not None else None
    if stale is None:
        raise failure from None
    log.warning("%s; using the copy fetched before, at %s", why, stale)
    return stale if dest is None else place(stale, dest)


def _download_model(
    backend: Backend,
    objects: list[RemoteObject],
    folder: Path,
    *,
    options: TransferOptions,
    limits: Limits,
    progress: Progress,
) -> None:
    """Download into `folder`; a model that is a single archive is unpacked there instead."""
    if len(objects) == 1 and is_archive(objects[0].name):
        archive_folder = folder.with_name(folder.name + ".archive")
        download(backend, objects, archive_folder, options=options, progress=progress)
        unpack(archive_folder / objects[0].name, folder, limits)
        shutil.rmtree(archive_folder)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        download(backend, objects, folder, options=options, progress=progress)


def place(model: Path, dest: Path) -> Path:
    """Put a copy of the folder `model` at `dest`: hard links where possible, copies otherwise."""
    return _staged(
        dest, lambda staging: shutil.copytree(model, staging, symlinks=True, copy_function=_link_or_copy)
    )


def _staged(dest: Path, build: Callable[[Path], object]) -> Path:
    """Run `build(folder)` on a staging folder next to `dest`, then move the result to `dest`."""
    _check_free(dest)
    dest = dest.absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        build(staging / "model")
        _move_into(staging / "model", dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _check_free(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigurationError(f"the destination {dest} exists and is not an empty folder")


def _move_into(folder: Path, dest: Path) -> None:
    try:
        os.rename(folder, dest)  # replaces an empty folder
    except OSError as exc:
        if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.ENOTEMPTY, errno.EEXIST):
            raise
        # `dest` is a mount point, or is being filled by someone else: move the entries one by one.
        dest.mkdir(exist_ok=True)
        for entry in folder.iterdir():
            os.rename(entry, dest / entry.name)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _version(objects: list[RemoteObject]) -> str:
    """What changes when any object of the model changes."""
    listing = sorted([o.name, o.size, o.version, str(o.checksum or "")] for o in objects)
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()
