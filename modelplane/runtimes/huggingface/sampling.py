"""Choosing each sequence's next token from the logits of a batch.

Every sequence has its own sampling parameters: temperature 0 (or below 1e-5, as in vLLM) is greedy
(the likeliest token), any other temperature samples after top-p filtering, from a random generator of the sequence's own,
seeded by the request's `seed` (so a seeded request is reproducible whatever runs beside it).
Presence and frequency penalties lower the logits of tokens the sequence has already generated, as
OpenAI describes them. vLLM's extensions work as in vLLM: `repetition_penalty` divides the positive
logits (and multiplies the negative ones) of tokens in the prompt or generated so far, before the
other two; `logit_bias` adds its biases before any of them; `min_tokens` keeps the tokens that end the sequence out until that many are generated;
`min_p` and `top_k` filter, after the temperature and before top-p. Log probabilities are those of the
model's own distribution, before any of this. A row that cannot be sampled is reported on its own
choice; the other rows go on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
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
    """One sequence's way of choosing tokens. `end_ids`: the tokens that end it (min_tokens holds
    them back)."""

    def __init__(
        self,
        params: SamplingParams,
        device: Any,
        vocab_size: int,
        prompt_ids: Sequence[int] = (),
        end_ids: frozenset[int] = frozenset(),
    ):
        self.params = params
        self.greedy = params.greedy
        self.generated = 0
        self.generator: torch.Generator | None = None
        if not self.greedy:
            seed = params.seed if params.seed is not None else random.getrandbits(63)
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(seed)
        self.counts: torch.Tensor | None = None
        if params.presence_penalty or params.frequency_penalty:
            self.counts = torch.zeros(vocab_size, device=device)
        self.seen: torch.Tensor | None = None  # the tokens repetition_penalty applies to
        if params.repetition_penalty != 1:
            self.seen = torch.zeros(vocab_size, dtype=torch.bool, device=device)
            self.seen[[token for token in prompt_ids if token < vocab_size]] = True
        self.held_back = sorted(token for token in end_ids if token < vocab_size) if params.min_tokens else []
        self.bias_ids: torch.Tensor | None = None  # logit_bias's tokens, and what it adds to each
        self.bias_values: torch.Tensor | None = None
        if params.logit_bias:
            self.bias_ids = torch.tensor([token for token, _ in params.logit_bias], device=device)
            self.bias_values = torch.tensor([bias for _, bias in params.logit_bias], device=device)

    @property
    def adjusts_logits(self) -> bool:
        return (
            self.counts is not None
            or self.seen is not None
            or bool(self.held_back)
            or self.bias_ids is not None
        )

    def penalise(self, logits: torch.Tensor) -> None:
        """Adjusts, in place, the logits: logit_bias, the penalties, and min_tokens."""
        if self.bias_ids is not None:
            logits[self.bias_ids] += self.bias_values
        if self.seen is not None:
            size = min(logits.shape[-1], self.seen.shape[0])
            part, seen = logits[:size], self.seen[:size]
            penalty = self.params.repetition_penalty
            part[seen] = torch.where(part[seen] > 0, part[seen] / penalty, part[seen] * penalty)
        if self.counts is not None:
            size = min(logits.shape[-1], self.counts.shape[0])
            counts = self.counts[:size]
            logits[:size] -= self.params.frequency_penalty * counts
            logits[:size] -= self.params.presence_penalty * (counts > 0).to(logits.dtype)
        if self.held_back and self.generated < self.params.min_tokens:
            logits[self.held_back] = float("-inf")

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        scaled = _finite_choice(logits / self.params.temperature)
        if self.params.min_p > 0:
            scaled = _min_p(scaled, self.params.min_p)
        if self.params.top_k > 0:
            scaled = _top_k(scaled, self.params.top_k)
        if self.params.top_p < 1:
            scaled = _top_p(scaled, self.params.top_p)
        return torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=self.generator)[0]

    def observe(self, token: int) -> None:
        self.generated += 1
        if self.counts is not None and token < self.counts.shape[0]:
            self.counts[token] += 1
        if self.seen is not None and token < self.seen.shape[0]:
            self.seen[token] = True


def choose(logits: torch.Tensor, samplers: list[Sampler]) -> list[Choice]:
    """The next token of each row of `logits` ([rows, vocabulary]), row i chosen by `samplers[i]`."""
    logits = logits.float()
    wanted = [sampler.params.logprobs for sampler in samplers]
    model_logprobs = torch.log_softmax(logits, dim=-1) if any(k is not None for k in wanted) else None
    if any(sampler.adjusts_logits for sampler in samplers):
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
    logprobs = _logprobs(model_logprobs, tokens, wanted) if model_logprobs is not None else {}
    choices = []
    for row, (sampler, token) in enumerate(zip(samplers, chosen, strict=True)):
        if row in errors:
            choices.append(Choice(token, error=errors[row]))
            continue
        sampler.observe(token)
        choices.append(Choice(token, *logprobs[row]) if row in logprobs else Choice(token))
    return choices


def _logprobs(
    model_logprobs: torch.Tensor, tokens: torch.Tensor, wanted: list[int | None]
) -> dict[int, tuple[float, tuple[tuple[int, float], ...]]]:
    """For each row that asks for log probabilities, its chosen token's and its `wanted` likeliest
    (at most the vocabulary): one gather and one top-k for the whole batch, read back at once."""
    rows = [row for row, top in enumerate(wanted) if top is not None]
    index = torch.tensor(rows, device=model_logprobs.device)
    asking = model_logprobs.index_select(0, index)
    chosen = asking.gather(-1, tokens.index_select(0, index)[:, None])[:, 0].tolist()
    most = min(max(wanted[row] for row in rows), asking.shape[-1])
    values, indices = asking.topk(most) if most else (asking[:, :0], asking[:, :0].long())
    values, indices = values.tolist(), indices.tolist()  # each row's likeliest first
    return {
        row: (logprob, tuple(zip(top_ids[: wanted[row]], top_values[: wanted[row]], strict=True)))
        for row, logprob, top_ids, top_values in zip(rows, chosen, indices, values, strict=True)
    }


def _finite_choice(logits: torch.Tensor) -> torch.Tensor:
    """`logits` whose softmax is a distribution. A repetition penalty far from 1, or a small temperature,
    can overflow the float: the infinite logits then tie for the whole probability (all of them, where
    every logit is -inf)."""
    top = logits.max()
    if not torch.isinf(top):
        return logits
    return torch.zeros_like(logits).masked_fill(logits != top, float("-inf"))


def _top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keeps the likeliest tokens whose probabilities add up to `top_p` (always at least one)."""
    ordered, order = logits.sort(descending=True)
    probabilities = ordered.softmax(dim=-1)
    before = probabilities.cumsum(dim=-1) - probabilities
    ordered = ordered.masked_fill(before > top_p, float("-inf"))
    return torch.empty_like(logits).scatter_(0, order, ordered)


def _top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keeps the `top_k` likeliest tokens."""
    if top_k >= logits.shape[-1]:
        return logits
    kth = logits.topk(top_k).values[-1]
    return logits.masked_fill(logits < kth, float("-inf"))


def _min_p(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keeps the tokens at least `min_p` times as likely as the likeliest."""
    probabilities = logits.softmax(dim=-1)
    return logits.masked_fill(probabilities < min_p * probabilities.max(), float("-inf"))


PROMPT_POSITIONS = 512  # prompt positions whose log probabilities are worked out at once


def prompt_choices(logits: torch.Tensor, prompt: list[int], top: int) -> list[Choice]:
    """Each prompt token after the first as the model saw it: its log probability after the tokens
    before it, and the `top` likeliest there. `logits` ([columns, vocabulary]) are a prefilled row's,
    its prompt the last columns. A few positions at a time: a vocabulary's worth of floats each."""
    targets = torch.tensor(prompt[1:], dtype=torch.long, device=logits.device)
    positions = logits[-len(prompt) : -1]
    choices = []
    for start in range(0, len(targets), PROMPT_POSITIONS):
        logprobs = torch.log_softmax(positions[start : start + PROMPT_POSITIONS].float(), dim=-1)
        wanted = targets[start : start + PROMPT_POSITIONS]
        chosen = logprobs.gather(-1, wanted[:, None])[:, 0].tolist()
        tops = [()] * len(chosen)
        if top:
            values, indices = logprobs.topk(min(top, logprobs.shape[-1]))
            tops = [
                tuple(zip(i, v, strict=True)) for i, v in zip(indices.tolist(), values.tolist(), strict=True)
            ]
        choices += [
            Choice(token, logprob, alternatives)
            for token, logprob, alternatives in zip(wanted.tolist(), chosen, tops, strict=True)
        ]
    return choices
