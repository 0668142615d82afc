"""Retrying a step that failed for a reason that may go away (a dropped connection, a 503)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("modelplane.storage")


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try and how long to wait: exponential back-off with full jitter."""

    attempts: int = 5
    initial_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, failures: int) -> float:
        """The pause after `failures` consecutive failures."""
        return random.uniform(0, min(self.max_delay, self.initial_delay * 2 ** (failures - 1)))

    def call(self, step: Callable[[], T], is_transient: Callable[[BaseException], bool], what: str) -> T:
        """Run `step`, retrying transient failures; the last failure is raised."""
        failures = 0
        while True:
            try:
                return step()
            except Exception as exc:
                failures += 1
                if failures >= self.attempts or not is_transient(exc):
                    raise
                pause = self.delay(failures)
                log.warning("%s failed (%s), retrying in %.1fs", what, type(exc).__name__, pause)
                time.sleep(pause)
