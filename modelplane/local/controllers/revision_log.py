"""The revisions each InferenceService and each InferenceGraph's router ever had, kept on disk so that a
restart of `modelplane up` runs the same revisions under the same names, and numbers new ones after them;
and the rolling updates under way (each component's replica count when its rollout began), so that a
restart goes on with them where they were.

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
        return [Revision.from_json(item) for item in self._read(namespace, name).get("revisions", [])]

    def rollouts(self, namespace: str, name: str) -> dict[str, int]:
        """The rollouts under way when the log was last saved: a component's replicas when it began."""
        found = self._read(namespace, name).get("rollouts") or {}
        return {str(component): int(total) for component, total in found.items() if isinstance(total, int)}

    def save(
        self, namespace: str, name: str, revisions: list[Revision], rollouts: dict[str, int] | None = None
    ) -> None:
        path = self._path(namespace, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        record: dict = {"revisions": [r.to_json() for r in revisions]}
        if rollouts:
            record["rollouts"] = rollouts
        body = orjson.dumps(record, option=orjson.OPT_INDENT_2)
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

    def _read(self, namespace: str, name: str) -> dict:
        try:
            data = orjson.loads(self._path(namespace, name).read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def forget(self, namespace: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(namespace, name).unlink()

    def _path(self, namespace: str, name: str) -> Path:
        return self.folder / namespace / f"{name}{self.suffix}"
