"""The bytes a token stands for, for the `bytes` of chat log probabilities.

A token's text (what decoding it alone gives) is not always its bytes: a byte-level BPE tokenizer
(GPT-2's, Llama 3's) may end a token part-way through a character, and a SentencePiece tokenizer with
byte fallback writes a character it has no piece for as one token a byte (`<0xE9>`); decoded alone,
such a token is U+FFFD. Their own bytes are in how the vocabulary spells them: byte-level BPE writes
each byte as one printable character (GPT-2's table), and a byte-fallback token names its byte. Any
other token's bytes are its text's UTF-8.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FALLBACK_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _byte_level_table() -> dict[str, int]:
    """GPT-2's table, read backwards: the character byte-level BPE writes for each byte, to the byte.
    Printable bytes stand for themselves; the others are written with the characters from U+0100 on."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    others = [byte for byte in range(256) if byte not in printable]
    table = {chr(byte): byte for byte in printable}
    table.update({chr(256 + index): byte for index, byte in enumerate(others)})
    return table


_BYTE_OF_CHARACTER = _byte_level_table()


class TokenBytes:
    """Each token's own bytes, by token id (remembered: a model generates the same tokens again)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        decoders = _decoder_types(tokenizer)
        self.byte_level = "ByteLevel" in decoders or hasattr(tokenizer, "byte_decoder")
        self.byte_fallback = "ByteFallback" in decoders
        self.added = set(getattr(tokenizer, "added_tokens_decoder", {}))  # written as they are
        self._known: dict[int, bytes] = {}

    def of(self, token: int) -> bytes:
        known = self._known.get(token)
        if known is None:
            known = self._known[token] = self._find(token)
        return known

    def _find(self, token: int) -> bytes:
        spelling = self.tokenizer.convert_ids_to_tokens(token)
        if isinstance(spelling, str) and token not in self.added:
            if self.byte_level and all(character in _BYTE_OF_CHARACTER for character in spelling):
                return bytes(_BYTE_OF_CHARACTER[character] for character in spelling)
            fallback = _FALLBACK_BYTE.fullmatch(spelling) if self.byte_fallback else None
            if fallback:
                return bytes([int(fallback.group(1), 16)])
        return self.tokenizer.decode([token]).encode()


def _decoder_types(tokenizer: Any) -> set[str]:
    """The kinds of decoder a fast tokenizer's `tokenizer.json` chains (none for another tokenizer)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return set()
    found: set[str] = set()
    pending = [json.loads(backend.to_str()).get("decoder")]
    while pending:
        decoder = pending.pop()
        if isinstance(decoder, dict):
            found.add(decoder.get("type"))
            pending.extend(decoder.get("decoders") or ())
    return found
