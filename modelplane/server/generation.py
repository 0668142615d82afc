"""What a model gives the OpenAI endpoints: tokens, a chat template, a stream of generated steps,
embeddings, and documents' relevance to a query. A runtime (the huggingface runtime's engines)
implements `TextGenerator`, `Embedder` or `Reranker` (a model's `generator`, `embedder` and
`reranker`); `modelplane.server.openai_routes` turns what they give into OpenAI's answers and streams.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from modelplane.protocol.openai import ChatMessage, ChatTemplateOptions, SamplingParams


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token's log probability, and the likeliest alternatives at its place.

    A token's text is what decoding it alone gives: a piece of a character is U+FFFD there, so its
    own bytes come in `token_bytes` (None: its text's UTF-8), and those of `top` in `top_bytes`
    (one for each, or none at all). A prompt's first token has no log probability (None): nothing
    comes before it."""

    token: str
    logprob: float | None
    top: tuple[tuple[str, float], ...] = ()
    token_bytes: bytes | None = None
    top_bytes: tuple[bytes | None, ...] = ()

    def own_bytes(self) -> bytes:
        return self.token.encode() if self.token_bytes is None else self.token_bytes

    def alternatives(self) -> list[tuple[str, float, bytes]]:
        """`top`, each with its bytes."""
        known = self.top_bytes or (None,) * len(self.top)
        return [
            (token, logprob, token.encode() if own is None else own)
            for (token, logprob), own in zip(self.top, known, strict=True)
        ]


@dataclass
class GenerationStep:
    """What one step of a generation added: one or more tokens and their text. The last step of a
    sequence says why it ended: "stop" (an end-of-sequence or stop token) or "length" (max_tokens),
    and `stop_reason` the token of the request's `stop_token_ids` that ended it (vLLM's; None for the
    model's end-of-sequence token). The first step carries the prompt's log probabilities, one per
    prompt token, when `prompt_logprobs` asks."""

    token_ids: list[int]
    text: str
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None
    prompt_logprobs: list[TokenLogprob] | None = None
    stop_reason: int | None = None


@dataclass
class EngineLoad:
    """How busy a generator is, for the metrics."""

    running: int = 0
    waiting: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class StopGeneration(Exception):
    """Thrown into a generation's steps by a caller that ends the sequence itself (a stop string
    matched, `stop_generation`): the generation stops, counted as stopped. Closing the steps early
    instead means the client left: the generation stops, counted as abandoned."""


async def stop_generation(steps: AsyncGenerator[GenerationStep, None]) -> None:
    """Ends the generation of `steps` as stopped by its caller (see `StopGeneration`)."""
    with contextlib.suppress(StopGeneration, StopAsyncIteration):
        await steps.athrow(StopGeneration())


@runtime_checkable
class TextGenerator(Protocol):
    """A model that generates text. `generate` yields steps until the sequence ends; closing the
    iterator early (the client left) stops the generation and frees its slot, and so does
    `stop_generation` (a stop string matched), which the metrics count as a stop, not an abandon.
    Prompts reach `generate` checked: within `max_model_len`, and token ids below `vocab_size`.
    `encode`, `decode` and `chat_prompt` are called on worker threads, perhaps several at once.
    A generator may say `max_chars_per_token`, the most characters of text one of its tokens stands
    for: a text far longer than the context can hold is then refused before it is tokenized whole
    (modelplane.server.long_prompts). It may say `max_logprobs`, the most likeliest tokens a request
    may ask for at each place (-1: the vocabulary; default 20, as vLLM's). It may say `sampling_defaults`, the model's own values for the
    sampling parameters a request leaves out (`modelplane.protocol.openai.MODEL_DEFAULTABLE`, and
    `max_tokens` for a chat), as vLLM reads them from a model's generation_config.json."""

    max_model_len: int
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, token_ids: Sequence[int]) -> str: ...

    def chat_prompt(self, messages: list[ChatMessage], template: ChatTemplateOptions) -> str: ...

    def unsupported(self, params: SamplingParams) -> str | None:
        """The name of a sampling parameter set to a value this generator cannot honour, if any."""
        ...

    def generate(self, prompt_ids: list[int], params: SamplingParams) -> AsyncIterator[GenerationStep]: ...

    def occupancy(self) -> EngineLoad: ...


@runtime_checkable
class Embedder(Protocol):
    """A model that embeds text. Inputs reach `embed` checked, as prompts reach `TextGenerator.generate`;
    `encode` is called on worker threads, perhaps several at once. It may say `max_chars_per_token`,
    as a `TextGenerator` may."""

    max_model_len: int
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    async def embed(self, inputs: list[list[int]]) -> list[list[float]]: ...


@dataclass(frozen=True)
class Relevance:
    """How relevant each document is to a query (in the documents' order), and the tokens read."""

    scores: list[float]
    tokens: int


class Reranker(Protocol):
    """A model that scores documents against a query (a cross-encoder)."""

    async def rerank(self, query: str, documents: list[str]) -> Relevance: ...
