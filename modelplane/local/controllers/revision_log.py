"""The revisions each InferenceService and each InferenceGraph's router ever had, kept on disk so that a
restart of `modelplane up` runs the same revisions under the same names, and numbers new ones after them;
and the rolling updates under way (each component's replica count when its rollout began), so that a
restart goes on with them where they were.

One JSON file per service, `<home>/revisions/<namespace>/<name>.json`, and per graph,
`<home>/revisions/<namespace>/<name>.inferencegraph.json` (`RevisionLog.of_graphs()`; a resource name has no
dot, so a service and a graph of the same name never share a file), replaced atomically (a temporary
file, flushed to disk, renamed over it), so a crash leaves the old file or the new one.

A file that cannot be read all the same (cut short by a full disk or by hand) is moved aside, next to it as
`<name>.json.damaged`, with a warning: the service starts again from its spec, and what the file said is
kept for whoever wants to look.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from modelplane.control import Revision

logger = logging.getLogger("modelplane.reconciler")

GRAPH_SUFFIX = ".inferencegraph.json"
DAMAGED_SUFFIX = ".damaged"


@dataclass(frozen=True)
class RevisionHistory:
    """What the log holds for one service or graph. `set_aside` is where a file that could not be read
    was moved: its history is lost, and the service starts again from its spec."""

    revisions: list[Revision] = field(default_factory=list)
    rollouts: dict[str, int] = field(default_factory=dict)
    set_aside: Path | None = None


class RevisionLog:
    def __init__(self, folder: Path, suffix: str = ".json") -> None:
        self.folder = folder
        self.suffix = suffix

    def of_graphs(self) -> RevisionLog:
        """The log of the InferenceGraphs' router revisions, next to the services' in the same folder."""
        return RevisionLog(self.folder, GRAPH_SUFFIX)

    def read(self, namespace: str, name: str) -> RevisionHistory:
        """The revisions of a service, and the rollouts under way when the log was last saved (a
        component's replicas when it began); a file that cannot be read is moved aside."""
        path = self._path(namespace, name)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return RevisionHistory()
        try:
            return _history_in(body)
        except ValueError as exc:  # orjson's JSONDecodeError is one
            aside = _set_aside(path)
            logger.warning(
                "the revision history of %s %s/%s in %s cannot be read (%s): moved it to %s; it starts "
                "again from its spec, and its past revisions (their names, a traffic split between them, "
                "a rollout under way) are lost",
                "InferenceGraph" if self.suffix == GRAPH_SUFFIX else "InferenceService",
                namespace,
                name,
                path,
                exc,
                aside,
            )
            return RevisionHistory(set_aside=aside)

    def load(self, namespace: str, name: str) -> list[Revision]:
        return self.read(namespace, name).revisions

    def rollouts(self, namespace: str, name: str) -> dict[str, int]:
        return self.read(namespace, name).rollouts

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

    def forget(self, namespace: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(namespace, name).unlink()

    def _path(self, namespace: str, name: str) -> Path:
        return self.folder / namespace / f"{name}{self.suffix}"


def _history_in(body: bytes) -> RevisionHistory:
    """The history a file holds; ValueError if it is not JSON, or not the history `save` writes."""
    record = orjson.loads(body)
    try:
        revisions = [Revision.from_json(item) for item in record.get("revisions") or []]
        rollouts = {
            str(component): total
            for component, total in (record.get("rollouts") or {}).items()
            if isinstance(total, int)
        }
    except (AttributeError, KeyError, TypeError, ValueError):
        raise ValueError("not a revision history") from None
    return RevisionHistory(revisions, rollouts)


def _set_aside(path: Path) -> Path:
    """Moves a damaged file to a name of its own beside it, never over an earlier one."""
    aside = path.with_name(path.name + DAMAGED_SUFFIX)
    copies = 1
    while aside.exists():
        copies += 1
        aside = path.with_name(f"{path.name}{DAMAGED_SUFFIX}.{copies}")
    os.rename(path, aside)
    return aside
