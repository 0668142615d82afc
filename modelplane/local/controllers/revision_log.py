"""The revisions each InferenceService and each InferenceGraph's router ever had, kept on disk so that a
restart of `modelplane up` runs the same revisions under the same names, and numbers new ones after them.

One JSON file per service, `<home>/revisions/<namespace>/<name>.json`, and per graph,
`<home>/revisions/<namespace>/<name>.inferencegraph.json` (`RevisionLog.of_graphs()`; a resource name has no
dot, so a service and a graph of the same name never share a file), replaced atomically.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import orjson

from modelplane.control import Revision

GRAPH_SUFFIX = ".inferencegraph.json"


class RevisionLog:
    def __init__(self, folder: Path, suffix: str = ".json") -> None:
        self.folder = folder
        self.suffix = suffix

    def of_graphs(self) -> RevisionLog:
        """The log of the InferenceGraphs' router revisions, next to the services' in the same folder."""
        return RevisionLog(self.folder, GRAPH_SUFFIX)

    def load(self, namespace: str, name: str) -> list[Revision]:
        try:
            data = orjson.loads(self._path(namespace, name).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return []
        return [Revision.from_json(item) for item in data.get("revisions", [])]

    def save(self, namespace: str, name: str, revisions: list[Revision]) -> None:
        path = self._path(namespace, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = orjson.dumps({"revisions": [r.to_json() for r in revisions]}, option=orjson.OPT_INDENT_2)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(body)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def forget(self, namespace: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(namespace, name).unlink()

    def _path(self, namespace: str, name: str) -> Path:
        return self.folder / namespace / f"{name}{self.suffix}"
