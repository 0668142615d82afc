"""What one multi-model server holds, made to follow the models wanted of it.

A wanted model that the server does not hold as it is now is fetched into the model folder (unless it
is there already, for the same spec) and loaded; a changed spec is unloaded first (its runtime may
differ). A model the server holds, or the folder has, that is not wanted is unloaded and its folder
removed. A step that fails is tried again after a back-off (2 s, doubling up to a minute), per model;
the other models go on meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from modelplane.agent.model_folder import Fetcher, ModelFolder
from modelplane.agent.model_list import WantedModel
from modelplane.agent.repository import RepositoryClient, RepositoryError

logger = logging.getLogger("modelplane.agent")

RETRY_INITIAL, RETRY_MAX = 2.0, 60.0


@dataclass(frozen=True)
class Failure:
    """The last attempt at a model failed: for which spec (None: unloading it), why, and when to try
    again (`time.monotonic()`)."""

    digest: str | None
    message: str
    retry_at: float
    backoff: float


class ServerModels:
    """One server's models. `label` names the server in log lines (where there are several); `note` is
    told each step."""

    def __init__(
        self,
        repository: RepositoryClient,
        folder: ModelFolder,
        fetch: Fetcher,
        *,
        label: str = "",
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.repository = repository
        self.folder = folder
        self.fetch = fetch
        self._prefix = f"{label}: " if label else ""
        self.note = note or (lambda _text: None)
        self.held: dict[str, str] = {}  # model -> the digest of the spec it was loaded for
        self.failures: dict[str, Failure] = {}
        self.recovered = False

    async def recover(self) -> bool:
        """Learns what the server holds: the models its index says are ready, each with the spec its
        folder was fetched for. False when the server does not answer (what was known is kept)."""
        try:
            index = await self.repository.index()
        except RepositoryError as exc:
            logger.warning("%sthe repository index is out of reach: %s", self._prefix, exc)
            return False
        ready = {str(e.get("name")) for e in index if str(e.get("state", "")).upper() == "READY"}
        self.held = {name: digest for name in ready if (digest := self.folder.fetched_digest(name))}
        self.recovered = True
        return True

    def unsettled(self, wanted: Mapping[str, WantedModel]) -> list[str]:
        """The models that are not as wanted, in order of name (and the failures of models no longer in
        question are forgotten)."""
        names = set(wanted) | set(self.held) | self.folder.names()
        for name in set(self.failures) - names:
            del self.failures[name]
        return sorted(n for n in names if n not in wanted or self.held.get(n) != wanted[n].digest)

    def waiting(self, name: str, model: WantedModel | None) -> bool:
        """Whether the last attempt at this same change failed and its back-off is not over."""
        failure = self.failures.get(name)
        return (
            failure is not None
            and failure.digest == (model.digest if model else None)
            and time.monotonic() < failure.retry_at
        )

    def next_retry(self) -> float | None:
        """When the first failed model is due to be tried again (`time.monotonic()`)."""
        return min((f.retry_at for f in self.failures.values()), default=None)

    def failed(self, wanted: Mapping[str, WantedModel]) -> dict[str, str]:
        """Why each wanted model that the server does not hold as wanted failed last, where its last
        attempt was for the spec wanted now (it may be under way again)."""
        return {
            name: failure.message
            for name, failure in self.failures.items()
            if name in wanted
            and failure.digest == wanted[name].digest
            and self.held.get(name) != wanted[name].digest
        }

    async def converge(self, name: str, model: WantedModel | None) -> str | None:
        """Makes the server hold `model` as `name` (None: nothing by that name). Returns why it failed,
        or why it failed last while its back-off runs."""
        before = self.failures.get(name)
        if self.waiting(name, model):
            return before.message
        try:
            if model is None:
                await self._take_out(name)
            else:
                await self._put(name, model)
        except Exception as exc:  # noqa: BLE001 - any failure is tried again after a back-off
            message = str(exc) or type(exc).__name__
            digest = model.digest if model else None
            same = before is not None and before.digest == digest
            backoff = min(before.backoff * 2, RETRY_MAX) if same else RETRY_INITIAL
            what = "loading" if model else "unloading"
            logger.warning("%s%s %s failed (again in %.0fs): %s", self._prefix, what, name, backoff, message)
            self.note(f"trained model {name} failed: {message}")
            self.failures[name] = Failure(digest, message, time.monotonic() + backoff, backoff)
            return message
        self.failures.pop(name, None)
        return None

    async def _put(self, name: str, model: WantedModel) -> None:
        """Fetch then load."""
        if self.folder.fetched_digest(name) != model.digest:
            # Out with what the server has by that name (a changed spec: its runtime may differ).
            await self.repository.unload(name)
            self.held.pop(name, None)
            self.note(f"trained model {name}: fetching {model.storage_uri}")
            logger.info("%sfetching trained model %s from %s", self._prefix, name, model.storage_uri)
            await self.folder.fill(name, model, self.fetch)
        await self.repository.load(name, model.model_id, self.folder.schema_text(name))
        self.held[name] = model.digest
        self.note(f"trained model {name}: loaded")
        logger.info("%strained model %s loaded", self._prefix, name)

    async def _take_out(self, name: str) -> None:
        """Unload then remove."""
        await self.repository.unload(name)
        self.held.pop(name, None)
        await self.folder.remove(name)
        self.note(f"trained model {name}: unloaded")
        logger.info("%strained model %s unloaded", self._prefix, name)
