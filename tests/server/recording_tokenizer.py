"""A transformers tokenizer wrapped to note the longest text it is given to tokenize at once, so tests
can check that a text far over a model's context is never tokenized whole."""

from __future__ import annotations

from typing import Any


class RecordingTokenizer:
    def __init__(self, tokenizer: Any):
        object.__setattr__(self, "_tokenizer", tokenizer)
        object.__setattr__(self, "longest", 0)

    def __call__(self, text: Any = None, text_pair: Any = None, **kwargs: Any) -> Any:
        for texts in (text, text_pair):
            for one in [texts] if isinstance(texts, str) else texts or ():
                object.__setattr__(self, "longest", max(self.longest, len(one)))
        return self._tokenizer(text, text_pair, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "longest":  # the wrapper's own (set 0 to start again)
            object.__setattr__(self, name, value)
        else:
            setattr(self._tokenizer, name, value)

    def __len__(self) -> int:
        return len(self._tokenizer)


def record_tokenizer(model: Any) -> RecordingTokenizer:
    """Wraps the tokenizer of a loaded predictive HuggingFaceModel (its encoder's, which V1, V2,
    embeddings and rerank use) and returns the wrapper."""
    recording = RecordingTokenizer(model._encoder.tokenizer)
    model._encoder.tokenizer = recording
    return recording
