"""Choosing each sequence's next token from the logits of a batch.

Every sequence has its own sampling parameters: temperature 0 (or below 1e-5, as in vLLM) is greedy
(the likeliest token), any other temperature samples after top-p filtering, from a random generator of the sequence's own,
seeded by the request's `seed` (so a seeded request is reproducible whatever runs beside it).
Presence and frequency penalties lower the logits of tokens the sequence has already generated, as
OpenAI describes them. Log probabilities are those of the model's own distribution, before any of
this. A row that cannot be sampled is reported on its own choice; the other rows go on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

from modelplane.protocol.openai import SamplingParams


@dataclass(frozen=True)
class Choice:
    """A chosen token, with its log probability and the likeliest alternatives when asked for."""

    token: int
    logprob: float | None = None
    top: tuple[tuple[int, float], ...] = ()
    error: Exception | None = None  # why no token could be sampled for this row (the others go on)


class Sampler:
    """One sequence's way of choosing tokens."""

    def __init__(self, params: SamplingParams, device: Any, vocab_size: int):
        self.params = params
        self.greedy = params.greedy
        self.generator: torch.Generator | None = None
        if not self.greedy:
            seed = params.seed if params.seed is not None else random.getrandbits(63)
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(seed)
        self.counts: torch.Tensor | None = None
        if params.presence_penalty or params.frequency_penalty:
            self.counts = torch.zeros(vocab_size, device=device)

    def penalise(self, logits: torch.Tensor) -> None:
        """Lowers, in place, the logits of tokens generated so far."""
        if self.counts is None:
            return
        size = min(logits.shape[-1], self.counts.shape[0])
        counts = self.counts[:size]
        logits[:size] -= self.params.frequency_penalty * counts
        logits[:size] -= self.params.presence_penalty * (counts > 0).to(logits.dtype)

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        scaled = logits / self.params.temperature
        if self.params.top_p < 1:
            scaled = _top_p(scaled, self.params.top_p)
        return torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=self.generator)[0]

    def observe(self, token: int) -> None:
        if self.counts is not None and token < self.counts.shape[0]:
            self.counts[token] += 1


def choose(logits: torch.Tensor, samplers: list[Sampler]) -> list[Choice]:
    """The next token of each row of `logits` ([rows, vocabulary]), row i chosen by `samplers[i]`."""
    logits = logits.float()
    wanted = [sampler.params.logprobs for sampler in samplers]
    model_logprobs = torch.log_softmax(logits, dim=-1) if any(k is not None for k in wanted) else None
    if any(sampler.counts is not None for sampler in samplers):
        logits = logits.clone()
        for row, sampler in enumerate(samplers):
            sampler.penalise(logits[row])
    tokens = logits.argmax(dim=-1)
    errors: dict[int, Exception] = {}
    for row, sampler in enumerate(samplers):
        if not sampler.greedy:
            try:
                tokens[row] = sampler.sample(logits[row])
            except Exception as exc:  # noqa: BLE001 - one row's parameters, not the batch's fault
                errors[row] = exc
    chosen = tokens.tolist()
    choices = []
    for row, (sampler, token) in enumerate(zip(samplers, chosen, strict=True)):
        if row in errors:
            choices.append(Choice(token, error=errors[row]))
            continue
        sampler.observe(token)
        if wanted[row] is None:
            choices.append(Choice(token))
            continue
        row_logprobs = model_logprobs[row]
        top = ()
        if wanted[row]:
            values, indices = row_logprobs.topk(wanted[row])
            top = tuple(zip(indices.tolist(), values.tolist(), strict=True))
        choices.append(Choice(token, row_logprobs[token].item(), top))
    return choices


def _top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keeps the likeliest tokens whose probabilities add up to `top_p` (always at least one)."""
    ordered, order = logits.sort(descending=True)
    probabilities = ordered.softmax(dim=-1)
    before = probabilities.cumsum(dim=-1) - probabilities
    ordered = ordered.masked_fill(before > top_p, float("-inf"))
    return torch.empty_like(logits).scatter_(0, order, ordered)
