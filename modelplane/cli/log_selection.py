"""What `modelplane logs --since`, `--since-time` and `--previous` select from a replica's log.

A replica's log holds what its program wrote, with the platform's own notes between the lines
(`[modelplane 2025-01-02T03:04:05Z] <revision>: starting: ...`). The program's lines carry no time,
so a line counts as written at the time of the note before it; each run of the program begins with
its `starting:` note, so the previous run is what lies between the last two of them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_NOTE = re.compile(r"^\[modelplane (?P<time>\S+)\] [^:\s]+: (?P<text>.*)$")
_DURATION_PART = re.compile(r"(?P<number>\d+(?:\.\d*)?|\.\d+)(?P<unit>ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> timedelta:
    """A Go duration (`5m`, `1h30m`, `10s`), as kubectl's `--since` takes it."""
    position, seconds = 0, 0.0
    while position < len(text):
        found = _DURATION_PART.match(text, position)
        if not found:
            raise ValueError(f'time: invalid duration "{text}"')
        seconds += float(found["number"]) * _UNIT_SECONDS[found["unit"]]
        position = found.end()
    if not text:
        raise ValueError('time: invalid duration ""')
    return timedelta(seconds=seconds)


def parse_rfc3339(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": not an RFC 3339 time'
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": it has no time zone')
    return moment


def _note(line: str) -> tuple[datetime | None, str] | None:
    found = _NOTE.match(line)
    if not found:
        return None
    try:
        moment = datetime.fromisoformat(found["time"].replace("Z", "+00:00"))
    except ValueError:
        moment = None
    return moment, found["text"]


def lines_since(text: str, since: datetime) -> str:
    """The lines of the log written at `since` or later (a program's line: at its note's time)."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        note = _note(line)
        if note and note[0] is not None and note[0] >= since:
            return "".join(lines[index:])
    return ""


def previous_run(text: str) -> str | None:
    """The log of the run before the current one, from its `starting:` note to the next; None when the
    log keeps only one run."""
    lines = text.splitlines(keepends=True)
    starts = [
        index for index, line in enumerate(lines) if (note := _note(line)) and note[1].startswith("starting:")
    ]
    if len(starts) < 2:
        return None
    return "".join(lines[starts[-2] : starts[-1]])


def now() -> datetime:
    return datetime.now(UTC)
