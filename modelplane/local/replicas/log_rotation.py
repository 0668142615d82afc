"""Keeps the logs under `<home>/logs` from filling the disk: a log above a size is copied aside and emptied.

Replicas (and the zygote) write their logs themselves, with O_APPEND, so a log cannot be renamed under
them: they would go on writing to the renamed file. Instead its content is copied to `<log>.1` (older
copies move up to `.2` ... `.<backups>`, and the oldest is dropped), and the file is emptied in place;
the process's next line starts the emptied file. Whatever arrived while the copy was made is copied too,
just before the file is emptied, so at most the lines written in that last instant are lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger("modelplane.logs")

_CHUNK = 1 << 20


def rotate(path: Path, backups: int) -> None:
    """Copies `path` to `path.1` (shifting the older copies) and empties it; with no backups, only empties it."""
    if backups < 1:
        os.truncate(path, 0)
        return
    for index in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
    copy = path.with_name(f"{path.name}.1")
    with path.open("rb") as source, copy.open("wb") as target:
        shutil.copyfileobj(source, target, _CHUNK)
        # The process may have written more meanwhile: take that too, right before emptying the file.
        target.write(source.read())
        os.truncate(path, 0)


def rotate_large_logs(logs_dir: Path, max_bytes: int, backups: int) -> list[Path]:
    """Rotates every `*.log` below `logs_dir` larger than `max_bytes`; returns those it rotated."""
    rotated = []
    for path in logs_dir.rglob("*.log"):
        try:
            if path.stat().st_size > max_bytes:
                rotate(path, backups)
                rotated.append(path)
        except OSError as exc:  # a replica's folder removed under us, a full disk: try again next time
            logger.warning("could not rotate %s: %s", path, exc)
    return rotated


async def rotate_logs_forever(logs_dir: Path, max_bytes: int, backups: int, interval: float = 10.0) -> None:
    while True:
        await asyncio.sleep(interval)
        for path in await asyncio.to_thread(rotate_large_logs, logs_dir, max_bytes, backups):
            logger.info("rotated %s (above %d bytes)", path, max_bytes)
