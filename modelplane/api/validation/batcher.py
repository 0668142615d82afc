"""The batcher of a component (`spec.<component>.batcher`): its numbers.

KServe checks none of them: its agent takes a number below 1 as its default (32 rows, 5000 ms).
modelplane refuses such numbers. Any container may have a batcher: `modelplane serve` batches itself,
and in front of any other program the platform starts `modelplane batcher`, as KServe's agent sidecar.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import paths
from ..errors import FieldError

_FIELDS = (("maxBatchSize", ""), ("maxLatency", " (milliseconds)"), ("timeout", " (seconds)"))


def batcher_errors(spec: dict, here: list) -> Iterator[FieldError]:
    batcher = spec.get("batcher")
    if not isinstance(batcher, dict):
        return
    for field, unit in _FIELDS:
        value = batcher.get(field)
        if isinstance(value, int) and value < 1:
            yield FieldError(
                paths.join([*here, "batcher", field]), f"{field} must be at least 1{unit}, got {value}"
            )
