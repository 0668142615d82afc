"""The model folder of a multi-model server: `<root>/<name>/` holds a model as fetched, and
`<root>/.<name>.trainedmodel` the digest of the spec it was fetched for, so that a model already there
is not fetched a second time; `<root>/.<name>.size` the bytes its loader measured it takes, where the
loader records it (ModelMesh's pools: a platform that restarts in place learns it back from there);
`<root>/.<name>.schema.json` the model's schema file, where it has one (ModelMesh's `schemaPath`: kept
out of the model's folder, where a runtime would take a .json file for the model). Hidden entries are
not models (the server skips them too): a fetch stages its files in `.<name>.partial-*` next to its
destination and renames them into place, so a model's folder is whole or absent."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from modelplane.agent.model_list import WantedModel

logger = logging.getLogger("modelplane.agent")

# Fetches the model at a storage URI into a folder that does not exist yet.
Fetcher = Callable[[str, Path], Awaitable[None]]
PREPARE_CONCURRENT = 4  # fetches at once before a server starts (each may be a process of its own)


class SchemaUnavailable(Exception):
    """The model's schema file could not be fetched (the model's own files were)."""


async def fetch_on_thread(uri: str, dest: Path) -> None:
    """`modelplane storage fetch URI DEST --no-cache`, in this process: the model goes straight into
    `dest` (a local folder or pvc claim is linked), with the storage config of `STORAGE_CONFIG`."""
    from modelplane.storage import fetch

    await asyncio.to_thread(fetch, uri, dest, use_cache=False)


class ModelFolder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> set[str]:
        """The models in the folder."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")}

    def fetched_digest(self, name: str) -> str | None:
        """The digest of the spec the model `name` was fetched for, if it is there."""
        marker = self._marker(name)
        if not (self.root / name).is_dir() or not marker.is_file():
            return None
        return marker.read_text().strip() or None

    def record_size(self, name: str, size: int) -> None:
        self._size_marker(name).write_text(str(size))

    def recorded_size(self, name: str) -> int | None:
        """The bytes the model `name` takes, as recorded when it was loaded (None: not recorded)."""
        try:
            return int(self._size_marker(name).read_text())
        except (OSError, ValueError):
            return None

    def schema_text(self, name: str) -> str | None:
        """The text of the model's schema file, if it has one."""
        try:
            return _schema_beside(self.root / name).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None

    async def fill(self, name: str, model: WantedModel, fetch: Fetcher) -> None:
        """Fetches `model` into `<root>/<name>/`, in place of what was there."""
        await self.remove(name)
        await fetch(model.storage_uri, self.root / name)
        await self._fetch_schema(name, model, self.root / name, fetch)
        self._marker(name).write_text(model.digest)

    async def fetch_aside(self, name: str, model: WantedModel, fetch: Fetcher) -> None:
        """Fetches `model` next to what `<root>/<name>/` holds now, which stays until `swap_in`: a
        fetch that fails leaves the model there as it was."""
        staged = self._aside(name)
        await _remove_model_at(staged)
        try:
            await fetch(model.storage_uri, staged)
            await self._fetch_schema(name, model, staged, fetch)
        except BaseException:
            await _remove_model_at(staged)
            raise

    async def swap_in(self, name: str, model: WantedModel, *, keep_previous: bool = False) -> None:
        """Puts the model `fetch_aside` fetched in place of what `<root>/<name>/` held. With
        `keep_previous`, what it held is kept until `restore_previous` or `drop_previous`."""
        if keep_previous and (self.root / name).is_dir():
            await self.drop_previous(name)
            _move_model(self.root / name, self._previous(name))
        await self.remove(name)
        _move_model(self._aside(name), self.root / name)
        self._marker(name).write_text(model.digest)

    async def restore_previous(self, name: str, digest: str) -> bool:
        """Puts back what `swap_in` kept of the model `name`, which was fetched for `digest`, in place
        of what `<root>/<name>/` holds now. False if nothing was kept."""
        if not self._previous(name).is_dir():
            return False
        await self.remove(name)
        _move_model(self._previous(name), self.root / name)
        self._marker(name).write_text(digest)
        return True

    async def drop_previous(self, name: str) -> None:
        await _remove_model_at(self._previous(name))

    async def remove(self, name: str) -> None:
        self._marker(name).unlink(missing_ok=True)
        self._size_marker(name).unlink(missing_ok=True)
        await _remove_model_at(self.root / name)

    async def _fetch_schema(self, name: str, model: WantedModel, folder: Path, fetch: Fetcher) -> None:
        """Fetches the model's schema file, if it has one, beside the model's `folder`; a schema that
        cannot be fetched fails the model's fetch, as it fails ModelMesh's puller."""
        if not model.schema_uri:
            return
        staged = self.root / f".{name}.partial-schema"
        await asyncio.to_thread(shutil.rmtree, staged, True)
        try:
            await fetch(model.schema_uri, staged)
            files = [path for path in staged.rglob("*") if path.is_file()]
            if len(files) != 1:
                raise SchemaUnavailable(
                    f"the model's schema path names {len(files)} files, where it names one JSON file"
                )
            files[0].replace(_schema_beside(folder))
        except SchemaUnavailable:
            raise
        except Exception as exc:
            raise SchemaUnavailable(f"the model's schema could not be fetched: {exc}") from None
        finally:
            await asyncio.to_thread(shutil.rmtree, staged, True)

    async def prepare(
        self, wanted: Mapping[str, WantedModel], fetch: Fetcher, wait: float | None = None
    ) -> dict[str, str]:
        """Before the server starts: the folder holds exactly the wanted models, each fetched for its
        spec (what is already there is kept), PREPARE_CONCURRENT at a time. Returns why each model that
        could not be fetched failed. With `wait`, the models still being fetched after `wait` seconds
        are left out (their fetches stopped), for the agent to load once the server runs: a slow model
        does not hold up the server's start."""
        for name in self.names() - set(wanted):
            await self.remove(name)
        turns = asyncio.Semaphore(PREPARE_CONCURRENT)

        async def fill(name: str, model: WantedModel) -> None:
            async with turns:
                await self.fill(name, model, fetch)

        tasks = {
            name: asyncio.create_task(fill(name, model))
            for name, model in sorted(wanted.items())
            if self.fetched_digest(name) != model.digest
        }
        if not tasks:
            return {}
        try:
            await asyncio.wait(tasks.values(), timeout=wait)
        finally:  # the fetches still under way end (after `wait`, or as this is cancelled)
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        failures = {}
        for name, task in tasks.items():
            if task.cancelled():
                logger.info("%s: fetching model %s takes long; it is left for later", self.root, name)
                await self.remove(name)
            elif (exc := task.exception()) is not None:  # tried again once the server runs
                failures[name] = str(exc) or type(exc).__name__
        if any(task.cancelled() for task in tasks.values()):
            self.remove_partials()
        return failures

    def remove_partials(self) -> None:
        """Removes what fetches that were stopped midway left (a fetch of this process is not under way)."""
        for partial in self.root.glob(".*.partial-*"):
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            else:  # the schema file of a model fetched aside
                partial.unlink(missing_ok=True)

    def _aside(self, name: str) -> Path:
        return self.root / f".{name}.partial-next"  # what `remove_partials` removes after a stop

    def _previous(self, name: str) -> Path:
        return self.root / f".{name}.partial-previous"  # gone after a stop too: nothing serves it then

    def _marker(self, name: str) -> Path:
        return self.root / f".{name}.trainedmodel"

    def _size_marker(self, name: str) -> Path:
        return self.root / f".{name}.size"


def _schema_beside(folder: Path) -> Path:
    """Where the schema file of the model fetched into `folder` is: a hidden file beside it."""
    hidden = folder.name if folder.name.startswith(".") else f".{folder.name}"
    return folder.with_name(f"{hidden}.schema.json")


def _move_model(folder: Path, to: Path) -> None:
    folder.rename(to)
    schema = _schema_beside(folder)
    if schema.is_file():
        schema.replace(_schema_beside(to))


async def _remove_model_at(folder: Path) -> None:
    _schema_beside(folder).unlink(missing_ok=True)
    await asyncio.to_thread(shutil.rmtree, folder, True)
