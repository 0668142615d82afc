"""Warm processes, one for each thread setting the replicas ask for.

The numeric libraries a zygote imports size their thread pools from the environment as they load:
OpenBLAS its thread count, OpenMP the count every new thread starts with. A replica forked from a
zygote keeps the zygote's pools whatever its own environment says, and setting them again after the
fork reaches only the replica's main thread, not the threads it predicts on. So each replica is
forked from a zygote started with the replica's own thread variables (`THREAD_ENV`, which its `cpu`
sets): the first replica with a new setting waits while a zygote for it starts, the next ones fork
at once. `modelplane up` starts the zygote for `cpu: 1` (what KServe's runtimes and its defaults for
custom containers ask for) with the platform.

At most `limit` zygotes run; a replica with yet another setting starts cold.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from modelplane.local.replicas.resources import THREAD_ENV, thread_env
from modelplane.local.replicas.zygote import ForkedProcess, Zygote, forkable

logger = logging.getLogger("modelplane.zygote")

ThreadSetting = tuple[str | None, ...]  # the values of THREAD_ENV, in order


def thread_setting(env: Mapping[str, str]) -> ThreadSetting:
    return tuple(env.get(name) for name in THREAD_ENV)


class Zygotes:
    """The zygotes of one platform, by thread setting; `spawn` as `Zygote.spawn`."""

    def __init__(self, logs_dir: Path, limit: int = 4, ready_timeout: float = 120.0) -> None:
        self.logs_dir = logs_dir
        self.limit = limit
        self.ready_timeout = ready_timeout  # a replica waits this long for a zygote's imports at most
        self._zygotes: dict[ThreadSetting, asyncio.Task[Zygote]] = {}
        self._first: ThreadSetting | None = None

    async def start(self, threads: int = 1, inherited: Sequence[dict] = ()) -> None:
        """Takes over the zygotes a previous program handed over (`hand_over`), then starts the zygote of
        replicas with `threads` threads (its log is `zygote.log`) unless it was among them; it gets
        ready in the background."""
        self._first = thread_setting({**os.environ, **thread_env(threads)})
        for state in inherited:
            setting = tuple(state["setting"])
            zygote = Zygote(self._log_path(setting))
            await zygote.inherit(state)
            taken = asyncio.get_running_loop().create_future()
            taken.set_result(zygote)
            self._zygotes[setting] = taken
        await self._zygote(self._first)

    async def spawn(
        self, argv: list[str], env: dict[str, str], log_path: Path, cwd: str | None = None
    ) -> ForkedProcess | None:
        """A replica forked from the zygote of its thread setting (started and waited for if need
        be), or None when it has to start cold."""
        if not forkable(argv):
            return None
        setting = thread_setting(env)
        if setting not in self._zygotes and len(self._zygotes) >= self.limit:
            return None
        try:
            zygote = await self._zygote(setting)
        except OSError as exc:
            logger.warning("cannot start a zygote: %s", exc)
            return None
        try:
            ready = await asyncio.wait_for(zygote.wait_ready(), self.ready_timeout)
        except TimeoutError:
            ready = False
        if not ready:
            return None
        return await zygote.spawn(argv, env, log_path, cwd)

    async def close(self) -> None:
        """Stops every zygote (the replicas they forked get SIGTERM too: stop them first)."""
        starts = list(self._zygotes.values())
        self._zygotes.clear()
        await asyncio.gather(*starts, return_exceptions=True)
        zygotes = [start.result() for start in starts if not start.cancelled() and start.exception() is None]
        await asyncio.gather(*(zygote.close() for zygote in zygotes))

    async def hand_over(self) -> list[dict]:
        """Leaves every running zygote to the platform's next program (its `start(inherited=...)`)."""
        handed = []
        for setting, start in list(self._zygotes.items()):
            if start.done() and not start.cancelled() and start.exception() is None:
                state = await start.result().hand_over()
                if state is not None:
                    handed.append({"setting": list(setting), **state})
        self._zygotes.clear()
        return handed

    def forked(self, pid: int) -> ForkedProcess | None:
        """The replica of this pid that one of the zygotes forked."""
        for start in self._zygotes.values():
            if start.done() and not start.cancelled() and start.exception() is None:
                child = start.result().child(pid)
                if child is not None:
                    return child
        return None

    def _log_path(self, setting: ThreadSetting) -> Path:
        return self.logs_dir / ("zygote.log" if setting == self._first else f"zygote-{_label(setting)}.log")

    async def _zygote(self, setting: ThreadSetting) -> Zygote:
        start = self._zygotes.get(setting)
        if start is None:
            start = self._zygotes[setting] = asyncio.create_task(self._started(setting))
        return await asyncio.shield(start)  # a replica stopped while it waits does not stop the start

    async def _started(self, setting: ThreadSetting) -> Zygote:
        env = {name: value for name, value in os.environ.items() if name not in THREAD_ENV}
        env.update(
            {name: value for name, value in zip(THREAD_ENV, setting, strict=True) if value is not None}
        )
        zygote = Zygote(self._log_path(setting), env)
        logger.info("starting a zygote for replicas with %s", _describe(setting))
        await zygote.start()
        return zygote


def _label(setting: ThreadSetting) -> str:
    values = set(setting)
    if values == {None}:
        return "threads-unset"
    if len(values) == 1:
        return f"threads-{setting[0]}"
    return "threads-" + "-".join(value or "x" for value in setting)


def _describe(setting: ThreadSetting) -> str:
    values = set(setting)
    if values == {None}:
        return "no thread setting"
    if len(values) == 1:
        return f"{setting[0]} thread{'s' if setting[0] != '1' else ''}"
    return ", ".join(f"{name}={value}" for name, value in zip(THREAD_ENV, setting, strict=True) if value)
