"""The batcher of a component (`spec.<component>.batcher`): its numbers, and a container that can apply it.

KServe checks none of this: its agent takes a number below 1 as its default (32 rows, 5000 ms), and
its agent sidecar batches in front of any container. modelplane refuses such numbers, and batches in
the model server, `modelplane serve`, so a custom container must run it.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import components, paths
from ..components import CUSTOM
from ..errors import FieldError

_FIELDS = (("maxBatchSize", ""), ("maxLatency", " (milliseconds)"), ("timeout", " (seconds)"))


def batcher_errors(component: str, spec: dict, here: list) -> Iterator[FieldError]:
    batcher = spec.get("batcher")
    if not isinstance(batcher, dict):
        return
    for field, unit in _FIELDS:
        value = batcher.get(field)
        if isinstance(value, int) and value < 1:
            yield FieldError(
                paths.join([*here, "batcher", field]), f"{field} must be at least 1{unit}, got {value}"
            )
    found = components.implementation(component, spec)
    if found is None or found[0] != CUSTOM:
        return  # a model's runtime is known once it is chosen; the revision checks it then
    argv = components.container_argv(found[1])
    if not components.runs_modelplane_serve(argv):
        yield FieldError(
            paths.join([*here, "batcher"]),
            "a batcher needs a container that runs modelplane serve, which does the batching; this one "
            f'runs "{" ".join(argv[:3])}" (serve a custom model with "modelplane serve '
            '--model-class file.py:Class", or remove the batcher)',
        )
