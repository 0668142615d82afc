"""The work that makes one multi-model server hold the models wanted of it, a task per model, as KServe's
model agent has a puller per model: a model whose fetch is slow (a large model, slow storage) holds up
none of the others, and the one who asks is not held up either.

A model's task runs `ServerModels.converge`. While it runs, no other task starts for that model; when
what is wanted of the model changes meanwhile (it is deleted, or its spec changed), the task is cancelled
and the next one starts once it has stopped. A model whose last attempt failed waits for its back-off.
At most `CONCURRENT` tasks work at once (each fetch may be a process of its own); the others wait
their turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from modelplane.agent.model_list import WantedModel
from modelplane.agent.server_models import ServerModels

CONCURRENT = 4


@dataclass(frozen=True)
class _Task:
    model: WantedModel | None  # what the task makes the server hold by that name (None: nothing)
    task: asyncio.Task


class ModelWork:
    """`done` is told each time a model's task ends (whatever the outcome)."""

    def __init__(self, server: ServerModels, done: Callable[[], None] | None = None) -> None:
        self.server = server
        self.done = done
        self._tasks: dict[str, _Task] = {}
        self._turns = asyncio.Semaphore(CONCURRENT)

    def busy(self) -> bool:
        return any(not t.task.done() for t in self._tasks.values())

    def under_way(self) -> set[str]:
        """The models a task is working on now."""
        return {name for name, t in self._tasks.items() if not t.task.done()}

    def start(self, wanted: Mapping[str, WantedModel]) -> None:
        """Starts a task for each model that is not as wanted and has none (nor a back-off to wait)."""
        self._tasks = {name: t for name, t in self._tasks.items() if not t.task.done()}
        for name in sorted(set(self.server.unsettled(wanted)) | set(self._tasks)):
            model = wanted.get(name)
            running = self._tasks.get(name)
            if running is not None:
                if running.model == model:
                    continue
                running.task.cancel()  # it works for what is no longer wanted
            elif self.server.waiting(name, model):
                continue
            after = running.task if running is not None else None
            self._tasks[name] = _Task(model, asyncio.create_task(self._converge(name, model, after)))

    async def _converge(self, name: str, model: WantedModel | None, after: asyncio.Task | None) -> None:
        try:
            if after is not None:  # the cancelled task's cleanup (a fetch process stopped) comes first
                await asyncio.gather(after, return_exceptions=True)
            async with self._turns:
                await self.server.converge(name, model)
        finally:
            if self.done is not None:
                self.done()

    def stop(self) -> None:
        """Cancels every task (each stops its fetch by itself)."""
        self.done = None  # no one is to be told of a stop
        for t in self._tasks.values():
            t.task.cancel()

    async def cancel(self) -> None:
        """Cancels every task, and waits until they have stopped."""
        self.stop()
        await asyncio.gather(*(t.task for t in self._tasks.values()), return_exceptions=True)
        self._tasks = {}
