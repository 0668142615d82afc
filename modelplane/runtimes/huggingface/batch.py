"""The sequences a model generates together, as the tensors of one forward pass.

Every running sequence is a row of one key/value cache. Rows are left-padded to a common length and
an attention mask hides the padding, so a sequence's tokens attend only to its own; each row's
position ids count its own tokens, so padding does not shift them. Each step feeds every row its last
token: one forward pass for the whole batch.

Sequences join between steps: their prompts are run together (a prefill), and their cache rows are
padded to the batch's length and appended. A finished or abandoned sequence's row is dropped, and
columns that are padding in every remaining row are cut off.

`DecoderOnlyBatch` serves causal language models; `EncoderDecoderBatch` serves T5-style models,
whose encoder runs once at prefill and whose decoder attends to the encoder's (right-padded) output.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch

from modelplane.runtimes.huggingface.loading import LoadError


class DecoderOnlyBatch:
    def __init__(self, model: Any, device: torch.device, pad_id: int):
        self.model = model
        self.device = device
        self.pad_id = pad_id
        self.cache_keyword = _cache_keyword(type(model))
        self.cache: Any = None
        self.mask: torch.Tensor | None = None  # [rows, columns]: 1 where the cache holds a real token
        self.positions: torch.Tensor | None = None  # [rows]: the position of each row's next token
        self.last: torch.Tensor | None = None  # [rows]: the token each row feeds next
        self.unpadded = True  # no row has padding: the mask hides nothing
        # After a prefill: [rows, columns, vocabulary], the logits at every prompt position (left-padded)
        # for the prompts' own log probabilities; None where the model has none (an encoder's prompt).
        self.prompt_logits: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.last is None else self.last.shape[0]

    def empty(self) -> DecoderOnlyBatch:
        return type(self)(self.model, self.device, self.pad_id)

    def prefill(self, prompts: list[list[int]]) -> tuple[DecoderOnlyBatch, torch.Tensor]:
        """A batch of new sequences with their prompts in the cache, and the logits of their first token."""
        from transformers import DynamicCache

        ids, mask = _left_padded(prompts, self.pad_id, self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        output = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **{self.cache_keyword: DynamicCache()},
        )
        part = self.empty()
        part.cache, part.mask, part.positions = _returned_cache(output), mask, mask.sum(-1)
        part.unpadded = bool(mask.all())
        part.prompt_logits = output.logits
        return part, output.logits[:, -1]

    def decode(self) -> torch.Tensor:
        """One step: every row's last token through the model; the logits of each row's next token."""
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self), 1)], dim=-1)
        output = self.model(
            input_ids=self.last[:, None],
            attention_mask=None if self.unpadded else self.mask,  # none to build: a cheaper step
            position_ids=self.positions[:, None],
            use_cache=True,
            **{self.cache_keyword: self.cache},
        )
        self.cache = _returned_cache(output)
        self.positions = self.positions + 1
        return output.logits[:, -1]

    def set_next(self, tokens: list[int]) -> None:
        self.last = torch.tensor(tokens, dtype=torch.long, device=self.device)

    def extend(self, other: DecoderOnlyBatch) -> None:
        """Appends `other`'s rows."""
        if not len(self):
            self.cache, self.mask, self.positions, self.last = (
                other.cache,
                other.mask,
                other.positions,
                other.last,
            )
            self.unpadded = other.unpadded
            return
        width = max(self.mask.shape[1], other.mask.shape[1])
        self.unpadded = self.unpadded and other.unpadded and self.mask.shape[1] == other.mask.shape[1]
        _append_rows(_layers(self.cache), _layers(other.cache), width, left=True)
        self.mask = torch.cat([_pad(self.mask, width, 1, left=True), _pad(other.mask, width, 1, left=True)])
        self.positions = torch.cat([self.positions, other.positions])
        self.last = torch.cat([self.last, other.last])

    def keep(self, rows: list[int]) -> None:
        """Keeps only `rows`, in that order."""
        if not rows:
            self.cache = self.mask = self.positions = self.last = None
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.mask = self.mask[index]
        start = _first_used_column(self.mask)
        _select_rows(_layers(self.cache), index, start, None)
        self.mask = self.mask[:, start:]
        self.unpadded = bool(self.mask.all())
        self.positions = self.positions[index]
        if self.last is not None:
            self.last = self.last[index]

    def check_cache(self) -> None:
        """Refuses a model whose cache is not one plain key/value pair per layer (which rows can be
        padded, appended and dropped from)."""
        with torch.inference_mode():
            part, _logits = self.prefill([[self.pad_id]])
        _check_plain(part.cache)


class EncoderDecoderBatch(DecoderOnlyBatch):
    def __init__(self, model: Any, device: torch.device, pad_id: int):
        super().__init__(model, device, pad_id)
        config = model.generation_config
        start = getattr(config, "decoder_start_token_id", None)
        if start is None:
            start = getattr(model.config, "decoder_start_token_id", None)
        self.start_id = pad_id if start is None else start
        self.encoded: torch.Tensor | None = None  # [rows, encoder columns, hidden]
        self.encoder_mask: torch.Tensor | None = None  # [rows, encoder columns]

    def prefill(self, prompts: list[list[int]]) -> tuple[EncoderDecoderBatch, torch.Tensor]:
        from transformers import DynamicCache, EncoderDecoderCache

        ids, encoder_mask = _right_padded(prompts, self.pad_id, self.device)
        encoded = self.model.get_encoder()(input_ids=ids, attention_mask=encoder_mask).last_hidden_state
        part = self.empty()
        part.encoded, part.encoder_mask = encoded, encoder_mask
        part.mask = encoder_mask.new_zeros(len(prompts), 0)
        part.cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        part.last = torch.full((len(prompts),), self.start_id, dtype=torch.long, device=self.device)
        return part, part.decode()

    def decode(self) -> torch.Tensor:
        from transformers.modeling_outputs import BaseModelOutput

        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self), 1)], dim=-1)
        output = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=self.encoded),
            attention_mask=self.encoder_mask,
            decoder_input_ids=self.last[:, None],
            decoder_attention_mask=self.mask,
            use_cache=True,
            **{self.cache_keyword: self.cache},
        )
        self.cache = _returned_cache(output)
        return output.logits[:, -1]

    def extend(self, other: EncoderDecoderBatch) -> None:
        if not len(self):
            self.cache, self.mask, self.last = other.cache, other.mask, other.last
            self.encoded, self.encoder_mask = other.encoded, other.encoder_mask
            return
        width = max(self.mask.shape[1], other.mask.shape[1])
        _append_rows(
            _layers(self.cache.self_attention_cache),
            _layers(other.cache.self_attention_cache),
            width,
            left=True,
        )
        self.mask = torch.cat([_pad(self.mask, width, 1, left=True), _pad(other.mask, width, 1, left=True)])
        length = max(self.encoder_mask.shape[1], other.encoder_mask.shape[1])
        _append_rows(
            _layers(self.cache.cross_attention_cache),
            _layers(other.cache.cross_attention_cache),
            length,
            left=False,
        )
        self.encoded = torch.cat(
            [_pad(self.encoded, length, 1, left=False), _pad(other.encoded, length, 1, left=False)]
        )
        self.encoder_mask = torch.cat(
            [_pad(self.encoder_mask, length, 1, left=False), _pad(other.encoder_mask, length, 1, left=False)]
        )
        self.last = torch.cat([self.last, other.last])

    def keep(self, rows: list[int]) -> None:
        if not rows:
            self.cache = self.mask = self.last = self.encoded = self.encoder_mask = None
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.mask = self.mask[index]
        start = _first_used_column(self.mask)
        _select_rows(_layers(self.cache.self_attention_cache), index, start, None)
        self.mask = self.mask[:, start:]
        self.encoder_mask = self.encoder_mask[index]
        end = _last_used_column(self.encoder_mask) + 1
        _select_rows(_layers(self.cache.cross_attention_cache), index, 0, end)
        self.encoder_mask = self.encoder_mask[:, :end]
        self.encoded = self.encoded[index, :end]
        self.last = self.last[index]

    def check_cache(self) -> None:
        with torch.inference_mode():
            part, _logits = self.prefill([[self.pad_id]])
        _check_plain(part.cache.self_attention_cache)
        _check_plain(part.cache.cross_attention_cache)


def _left_padded(
    prompts: list[list[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(prompt) for prompt in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def _right_padded(
    prompts: list[list[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(prompt) for prompt in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, : len(prompt)] = torch.tensor(prompt, dtype=torch.long)
        mask[row, : len(prompt)] = 1
    return ids.to(device), mask.to(device)


def _pad(tensor: torch.Tensor, width: int, dim: int, *, left: bool) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    zeros = tensor.new_zeros(shape)
    return torch.cat([zeros, tensor] if left else [tensor, zeros], dim=dim)


def _layers(cache: Any) -> list:
    return list(cache.layers)


def _append_rows(layers: list, others: list, width: int, *, left: bool) -> None:
    for layer, other in zip(layers, others, strict=True):
        layer.keys = torch.cat(
            [_pad(layer.keys, width, -2, left=left), _pad(other.keys, width, -2, left=left)]
        )
        layer.values = torch.cat(
            [_pad(layer.values, width, -2, left=left), _pad(other.values, width, -2, left=left)]
        )


def _select_rows(layers: list, index: torch.Tensor, start: int, end: int | None) -> None:
    for layer in layers:
        layer.keys = layer.keys[index, :, start:end]
        layer.values = layer.values[index, :, start:end]


def _first_used_column(mask: torch.Tensor) -> int:
    used = mask.any(dim=0)
    return int(used.int().argmax()) if bool(used.any()) else mask.shape[1]


def _last_used_column(mask: torch.Tensor) -> int:
    used = mask.any(dim=0)
    return mask.shape[1] - 1 - int(used.flip(0).int().argmax())


def _check_plain(cache: Any) -> None:
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if (
        type(cache) is not DynamicCache
        or not layers
        or any(type(layer) is not DynamicLayer for layer in layers)
    ):
        kinds = sorted({type(layer).__name__ for layer in layers or ()}) or [type(cache).__name__]
        raise LoadError(
            "the huggingface engine batches models whose cache holds plain keys and values per layer; "
            f"this model's cache is {', '.join(kinds)}"
        )


@functools.cache
def _cache_keyword(model_class: type) -> str:
    """The name a model's forward takes its key/value cache by: `cache` in the transformers releases
    that renamed it (where the old `past_key_values` warns on every call), else `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _returned_cache(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values
