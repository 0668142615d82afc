"""Metrics of text generation, under the names vLLM gives them, so vLLM's dashboards read modelplane's.

A sequence is waiting from its request's arrival until its first token, and running from then until
it ends. Time to first token and time per output token are observed once per sequence.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LABELS = ["model_name"]
_TOKEN_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)

RUNNING = Gauge(
    "vllm:num_requests_running", "Sequences generating tokens", _LABELS, multiprocess_mode="livesum"
)
WAITING = Gauge(
    "vllm:num_requests_waiting",
    "Sequences waiting for their first token",
    _LABELS,
    multiprocess_mode="livesum",
)
TIME_TO_FIRST_TOKEN = Histogram(
    "vllm:time_to_first_token_seconds", "Time from a request's arrival to its first token", _LABELS,
    buckets=_LATENCY_BUCKETS,
)  # fmt: skip
TIME_PER_OUTPUT_TOKEN = Histogram(
    "vllm:time_per_output_token_seconds", "Time between output tokens, per sequence", _LABELS,
    buckets=_TOKEN_BUCKETS,
)  # fmt: skip
E2E_LATENCY = Histogram(
    "vllm:e2e_request_latency_seconds", "Time from a request's arrival to its last token", _LABELS,
    buckets=_LATENCY_BUCKETS,
)  # fmt: skip
PROMPT_TOKENS = Counter("vllm:prompt_tokens", "Prompt tokens processed", _LABELS)
GENERATION_TOKENS = Counter("vllm:generation_tokens", "Tokens generated", _LABELS)


class GenerationMetrics:
    """The labelled metrics of one model."""

    def __init__(self, model_name: str):
        self.running = RUNNING.labels(model_name)
        self.waiting = WAITING.labels(model_name)
        self.first_token_seconds = TIME_TO_FIRST_TOKEN.labels(model_name)
        self.per_token_seconds = TIME_PER_OUTPUT_TOKEN.labels(model_name)
        self.latency = E2E_LATENCY.labels(model_name)
        self.prompt_tokens = PROMPT_TOKENS.labels(model_name)
        self.generation_tokens = GENERATION_TOKENS.labels(model_name)

    def started(self) -> None:
        self.waiting.inc()

    def first_token(self, seconds: float) -> None:
        self.waiting.dec()
        self.running.inc()
        self.first_token_seconds.observe(seconds)

    def finished(
        self, prompt_tokens: int, generated: int, started: float, first: float | None, ended: float
    ) -> None:
        if first is None:
            self.waiting.dec()
        else:
            self.running.dec()
            if generated > 1:
                self.per_token_seconds.observe((ended - first) / (generated - 1))
        self.latency.observe(ended - started)
        self.prompt_tokens.inc(prompt_tokens)
        self.generation_tokens.inc(generated)


_by_model: dict[str, GenerationMetrics] = {}


def for_model(model_name: str) -> GenerationMetrics:
    metrics = _by_model.get(model_name)
    if metrics is None:
        metrics = _by_model[model_name] = GenerationMetrics(model_name)
    return metrics
