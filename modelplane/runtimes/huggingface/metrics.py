"""The generation engines' own metrics: how many sequences each decoding step of the huggingface
engine ran together, and how sequences ended (`stop`, `length`, or `abandoned` when the client left
first), on either engine."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BATCH_SEQUENCES = Histogram(
    "modelplane_generation_batch_sequences",
    "Sequences in each decoding step of the huggingface engine (one forward pass), by model",
    ["model_name"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
SEQUENCES_ENDED = Counter(
    "modelplane_generation_sequences",
    "Sequences the generation engine ended, by model and how: stop, length or abandoned",
    ["model_name", "finish"],
)


class EngineMetrics:
    def __init__(self, model_name: str):
        self.model_name = model_name
        self._batch = BATCH_SEQUENCES.labels(model_name)

    def decoded(self, sequences: int) -> None:
        self._batch.observe(sequences)

    def ended(self, finish: str, count: int = 1) -> None:
        if count:
            SEQUENCES_ENDED.labels(self.model_name, finish).inc(count)
