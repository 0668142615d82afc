"""The controllers' workers: a failure is tried again, and a fault of the store's file (its disk full,
a lock) is one WARNING line now and then, not a traceback at each try."""

from __future__ import annotations

import asyncio
import logging

from modelplane.local.api.store_faults import StoreFull
from modelplane.local.api.store_lock import StoreLocked
from modelplane.local.controllers.keyed_work import KeyedWorkers

KEY = ("default", "iris")


def test_a_store_fault_is_one_warning_line_per_key_and_kind_of_fault(caplog):
    failures = iter(
        [StoreFull("the store's disk is full")] * 3
        + [StoreLocked("the store is locked"), RuntimeError("a bug")]
    )

    async def scenario() -> None:
        tried = asyncio.Queue()

        async def work(key) -> bool:
            tried.put_nowait(key)
            raise next(failures)

        workers = KeyedWorkers(work, "reconciling service", "inferenceservice")
        try:
            for _ in range(5):
                workers.kick(KEY)
                await tried.get()  # the worker has failed, and said so, by the time it yields
        finally:
            await workers.close()

    with caplog.at_level(logging.WARNING, "modelplane.reconciler"):
        asyncio.run(scenario())
    said = [(record.levelname, record.getMessage(), record.exc_info is not None) for record in caplog.records]
    assert said == [
        (
            "WARNING",
            "reconciling service ('default', 'iris') failed; trying again: the store's disk is full",
            False,
        ),
        (
            "WARNING",
            "reconciling service ('default', 'iris') failed; trying again: the store is locked",
            False,
        ),
        ("ERROR", "reconciling service ('default', 'iris') failed; trying again", True),
    ]
