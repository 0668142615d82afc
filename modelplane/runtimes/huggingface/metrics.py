"""The huggingface engine's own metric: how many sequences each decoding step ran together."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Histogram

BATCH_SEQUENCES = Histogram(
    "modelplane_generation_batch_sequences",
    "Sequences in each decoding step of the huggingface engine (one forward pass), by model",
    ["model_name"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)


def batch_observer(model_name: str) -> Callable[[int], None]:
    return BATCH_SEQUENCES.labels(model_name).observe
