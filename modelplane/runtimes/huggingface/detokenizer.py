"""Turning a sequence's tokens into text as they come.

A token is not always text of its own: a byte-level tokenizer may split one character across tokens,
and a SentencePiece tokenizer writes a word's leading space only next to the word before it. So the
text of the newest tokens is the difference between decoding a short window of tokens with them and
without them; the window starts in the prompt, and text ending in half a character waits for the
token that completes it.
"""

from __future__ import annotations

from typing import Any

_CONTEXT = 5  # prompt tokens the window starts with
_INCOMPLETE = "\ufffd"  # what a decoder writes for a character whose bytes have not all come


class IncrementalText:
    def __init__(self, tokenizer: Any, prompt_ids: list[int]):
        self.tokenizer = tokenizer
        self.ids = list(prompt_ids[-_CONTEXT:])
        self.prefix = 0  # where the window starts
        self.read = len(self.ids)  # tokens up to here have been written out

    def add(self, token: int) -> str:
        """The text `token` completes (perhaps none yet)."""
        self.ids.append(token)
        written = self._decode(self.ids[self.prefix : self.read])
        text = self._decode(self.ids[self.prefix :])
        if len(text) > len(written) and not text.endswith(_INCOMPLETE):
            self.prefix, self.read = self.read, len(self.ids)
            return text[len(written) :]
        return ""

    def rest(self) -> str:
        """The text still held back, when the sequence ends."""
        written = self._decode(self.ids[self.prefix : self.read])
        text = self._decode(self.ids[self.prefix :])
        self.prefix = self.read = len(self.ids)
        return text[len(written) :]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True) if ids else ""
