"""The token the predictive tasks pad a batch's shorter texts with.

transformers pads only with a tokenizer's pad token, which many decoder models' tokenizers (GPT-2's,
Llama's) lack. And a sequence classifier of such a model reads each text's last token that is not the
pad token its config names, refusing a batch of several when the config names none, and reading a pad
token for each shorter text when the tokenizer pads with another. So a sequence classifier pads with
the token its config names (and its config is told the one chosen when it names none); other tasks pad
with the tokenizer's; either falls back on the other, then on the end-of-sequence token (the usual
stand-in), the unknown token, and the first token of the vocabulary. Padding sits under the attention
mask, so which token it is changes no other answer.

KServe adds a new `[PAD]` token to such a tokenizer and grows the model's embeddings for it, and
leaves the config as it is (so its sequence classifiers still refuse a batch of several).
"""

from __future__ import annotations

from typing import Any


def pad_token(tokenizer: Any, config: Any, sequence_classifier: bool) -> str:
    """The token texts are padded with, for a model with this `tokenizer` and `config`."""
    configured = configured_pad_token(tokenizer, config)
    own = tokenizer.pad_token
    preferred = [configured, own] if sequence_classifier else [own, configured]
    fallbacks = [tokenizer.eos_token, tokenizer.unk_token, tokenizer.convert_ids_to_tokens(0)]
    return next(token for token in [*preferred, *fallbacks] if token)


def configured_pad_token(tokenizer: Any, config: Any) -> str | None:
    """The pad token `config` names, when it names one the tokenizer has."""
    pad_id = getattr(config.get_text_config(), "pad_token_id", None)
    if not isinstance(pad_id, int) or not 0 <= pad_id < len(tokenizer):
        return None
    return tokenizer.convert_ids_to_tokens(pad_id)


def settle(tokenizer: Any, config: Any, model: Any, sequence_classifier: bool) -> None:
    """Gives `tokenizer` the pad token to pad with, and a sequence classifier's `model` (None when it
    runs elsewhere) its id."""
    tokenizer.pad_token = pad_token(tokenizer, config, sequence_classifier)
    if sequence_classifier and model is not None:
        model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
