"""Field paths as modelplane prints them: `spec.predictor.containers[0].env[1].name`."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[([^\]]*)\]")


def join(parts: Iterable[str | int]) -> str:
    """A printable path from its keys and list indices; keys that are not plain words go in brackets."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part}]"
    return out


def split(path: str) -> list[str]:
    """The keys and indices of a printed path, all as strings (`"containers[0]"` -> `["containers", "0"]`)."""
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _TOKEN.finditer(path)]
