"""`modelplane agent`: the model agent next to a multi-model server in its pod, as KServe's.

It reads the list of models (`models.json`, from the ConfigMap `modelconfig-<isvc>-0` mounted at
`--config-dir`) every `--poll-interval` seconds and makes the server at `--server` hold exactly those,
fetching each into `--model-dir/<name>` (`server_models`). Each model is worked on by a task of its
own, so a long fetch holds up no other model; a failed one is tried again after its back-off. A list
that cannot be read or is not JSON changes nothing (the models stay as they are) until it is fixed.

Kubelet updates a ConfigMap volume by writing the new files into a fresh folder and swapping the
`..data` symlink to it, so the file is opened by its path at each look, never kept open or watched by
inode. Until the server is ready the agent only waits; every half minute, when nothing is under way,
it asks the server again what it holds (a restarted server loads the model folders it finds).

`--prefetch` is its init container: it fetches the listed models into the model folder and exits, so
that the server loads them before it says it is ready (KServe's agent holds the pod's readiness until
it has fetched them and asked the server to load them). A model it cannot fetch is left to the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import httpx

from modelplane.agent.model_folder import Fetcher, ModelFolder, fetch_on_thread
from modelplane.agent.model_list import MODELS_FILE, ModelListError, WantedModel, parse_model_list
from modelplane.agent.model_work import ModelWork
from modelplane.agent.repository import RepositoryClient
from modelplane.agent.server_models import ServerModels

logger = logging.getLogger("modelplane.agent")

POLL_INTERVAL = 2.0
RESYNC_INTERVAL = 30.0
LOAD_TIMEOUT = 600.0


class ModelListFile:
    """The mounted models.json, read again at each look and parsed when its bytes changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: bytes | None = None
        self._complaint: str | None = None  # said once, until the file reads well again

    def read_if_changed(self) -> dict[str, WantedModel] | None:
        """The models listed, when the file changed since the last look and reads well; else None."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:  # absent for a moment while kubelet swaps the folder, or not mounted
            self._complain(f"cannot read {self.path}: {exc.strerror or exc}")
            return None
        if data == self._last:
            return None
        self._last = data
        try:
            models, skipped = parse_model_list(data)
        except ModelListError as exc:
            self._complain(f"{self.path} is left aside, the models stay as they are: {exc}")
            return None
        self._complaint = None
        for why in skipped:
            logger.warning("%s: left out: %s", self.path, why)
        return models

    def _complain(self, message: str) -> None:
        if message != self._complaint:
            logger.warning("%s", message)
        self._complaint = message


async def run_agent(
    config_dir: Path,
    model_dir: Path,
    server_url: str,
    stopping: asyncio.Event,
    *,
    poll_interval: float = POLL_INTERVAL,
    fetch: Fetcher = fetch_on_thread,
) -> None:
    """Makes the server at `server_url` hold the models `config_dir/models.json` lists, until
    `stopping` is set."""
    models_file = ModelListFile(config_dir / MODELS_FILE)
    folder = ModelFolder(model_dir)
    folder.remove_partials()
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=LOAD_TIMEOUT)) as client:
        repository = RepositoryClient(client, server_url)
        server = ServerModels(repository, folder, fetch)
        if not await _until_ready(repository, stopping, poll_interval):
            return
        await server.recover()
        work = _ModelWork(server)
        try:
            while not stopping.is_set():
                listed = models_file.read_if_changed()
                if listed is not None:
                    work.want(listed)
                await work.step()
                await _wait(stopping, poll_interval)
        finally:
            await work.cancel()


class _ModelWork:
    """The models' tasks (`ModelWork`), and, while none is under way, a look at what the server holds
    every RESYNC_INTERVAL."""

    def __init__(self, server: ServerModels) -> None:
        self.server = server
        self.wanted: dict[str, WantedModel] | None = None  # None until the list has been read
        self.work = ModelWork(server)
        self.resynced = time.monotonic()

    def want(self, listed: dict[str, WantedModel]) -> None:
        if listed != self.wanted:
            logger.info("models listed: %s", ", ".join(sorted(listed)) or "none")
        self.wanted = listed

    async def step(self) -> None:
        if self.wanted is None:
            return
        if not self.work.busy() and time.monotonic() - self.resynced > RESYNC_INTERVAL:
            await self.server.recover()
            self.resynced = time.monotonic()
        self.work.start(self.wanted)

    async def cancel(self) -> None:
        await self.work.cancel()


async def prefetch(config_dir: Path, model_dir: Path, *, fetch: Fetcher = fetch_on_thread) -> None:
    """Fetches the models `config_dir/models.json` lists into `model_dir`, before the server starts."""
    listed = ModelListFile(config_dir / MODELS_FILE).read_if_changed()
    if listed is None:
        return
    folder = ModelFolder(model_dir)
    folder.remove_partials()
    failures = await folder.prepare(listed, fetch)
    for name, why in sorted(failures.items()):
        logger.warning("trained model %s could not be fetched (the agent tries again): %s", name, why)
    fetched = sorted(set(listed) - set(failures))
    logger.info("models in %s: %s", model_dir, ", ".join(fetched) or "none")


async def _until_ready(repository: RepositoryClient, stopping: asyncio.Event, interval: float) -> bool:
    """Waits for the server to be ready; False when stopped first."""
    said = False
    while not stopping.is_set():
        if await repository.ready():
            logger.info("the model server at %s is ready", repository.url)
            return True
        if not said:
            logger.info("waiting for the model server at %s to be ready", repository.url)
            said = True
        await _wait(stopping, interval)
    return False


async def _wait(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
