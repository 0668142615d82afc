"""Local paths and file:// URIs. A folder is used where it is; a single file is read like a remote object."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..config import StorageConfig
from ..errors import NotFoundError
from ..uri import Location
from .base import CHUNK, Backend, RemoteObject


def local_path(location: Location, path: Path | None = None) -> Path:
    """The absolute path of a local location (or `path`, which a pvc:// location maps to); it must exist."""
    path = path or Path(location.path).expanduser()
    if not path.exists():
        raise NotFoundError(f"{location.display}: {path} does not exist")
    return path.absolute()


class LocalFileBackend(Backend):
    """One local file, so that archives and single files go through the cache like downloads."""

    def __init__(self, location: Location, config: StorageConfig, path: Path) -> None:
        super().__init__(location, config)
        self.path = path

    def list_objects(self) -> list[RemoteObject]:
        stat = self.path.stat()
        return [
            RemoteObject(
                name=self.path.name,
                key=str(self.path),
                size=stat.st_size,
                version=f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}",
            )
        ]

    def read(self, obj: RemoteObject, start: int, end: int | None) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            handle.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                data = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def names_one_object(self, objects: list[RemoteObject]) -> bool:
        return True

    def transient(self, exc: BaseException) -> bool:
        return False
