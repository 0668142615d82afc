"""Choosing which files of a model folder to fetch: allow and ignore patterns (fnmatch on relative paths)."""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from .backends.base import RemoteObject


@dataclass(frozen=True)
class FileFilter:
    """Keep the files matching any `allow` pattern (all when there is none), minus those matching `ignore`."""

    allow: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> FileFilter:
        """`STORAGE_ALLOW_PATTERNS` and `STORAGE_IGNORE_PATTERNS`: a JSON list, or comma-separated."""
        return cls(_env_patterns("STORAGE_ALLOW_PATTERNS"), _env_patterns("STORAGE_IGNORE_PATTERNS"))

    @classmethod
    def of(cls, allow: Sequence[str] | None, ignore: Sequence[str] | None) -> FileFilter:
        """The given patterns; those left as None come from the environment."""
        env = cls.from_env()
        return cls(
            env.allow if allow is None else tuple(allow),
            env.ignore if ignore is None else tuple(ignore),
        )

    def keeps(self, name: str) -> bool:
        if self.allow and not any(fnmatch.fnmatch(name, p) for p in self.allow):
            return False
        return not any(fnmatch.fnmatch(name, p) for p in self.ignore)

    def apply(self, objects: list[RemoteObject]) -> list[RemoteObject]:
        return [obj for obj in objects if self.keeps(obj.name)]

    def as_record(self) -> dict[str, list[str]] | None:
        """The patterns as a cache entry records them; None when there is none."""
        return {"allow": list(self.allow), "ignore": list(self.ignore)} if self else None

    def __bool__(self) -> bool:
        return bool(self.allow or self.ignore)


def _env_patterns(name: str) -> tuple[str, ...]:
    value = os.environ.get(name, "").strip()
    if not value:
        return ()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value.split(",")
    items = parsed if isinstance(parsed, list) else [parsed]
    return tuple(str(p).strip() for p in items if str(p).strip())
