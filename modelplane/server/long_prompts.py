"""Finding that a prompt is longer than a model's context without tokenizing it whole.

Tokenizing takes memory in proportion to the text (a fast transformers tokenizer: about 200 bytes a
character), so a prompt of a few hundred megabytes, within the server's body limit, could take the
server down before its token count showed it too long. A model whose tokenizer says how many
characters one token stands for at most (`max_chars_per_token`) has a text longer than its context
could hold (at that many characters a token, twice over) tokenized a piece at a time, each piece no
longer than that, and the text is refused as soon as its tokens fill the context: a text far over the
context is refused after its first piece, and memory stays within one piece. A text whose pieces turn
out to fit (its tokenizer drops characters: BERT's whitespace, or one `[UNK]` for a long unknown word)
is then tokenized whole, as a shorter one is.

Where a text over the context is truncated instead of refused (the predictive tasks, `/rerank`),
`within_context` finds the same way a prefix of it that is already over the context: tokenized and
truncated, it gives the tokens the whole text would, for the cost of that prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# A normalizer may join characters (NFC composes a letter and its accent), so a token can stand for a
# few more characters than its own text has.
SAFETY = 2
MOST_CHARACTERS_AT_ONCE = 1 << 20  # whatever the context: ~200 MB to tokenize
# The tokens on either side of a cut may differ from the whole text's (a word cut in two, a space a
# SentencePiece tokenizer adds at the start of each piece): each cut may count this many too many.
CUT_SLACK = 8


@dataclass(frozen=True)
class Overflow:
    """A text found longer than the context: its first `characters` alone are at least `tokens` tokens."""

    characters: int
    tokens: int


def piece_length(max_chars_per_token: int | None, context: int) -> int | None:
    """The most characters tokenized at once: a longer text is over `context` tokens unless its
    tokenizer drops characters. None where the tokenizer gives no bound: every text is tokenized whole."""
    if not max_chars_per_token:
        return None
    return min(context * max_chars_per_token * SAFETY, MOST_CHARACTERS_AT_ONCE)


def overflow(
    text: str, encode: Callable[[str], list[int]], piece: int | None, context: int
) -> Overflow | None:
    """How `text` is found to have more than `context` tokens, counting them piece by piece; None when
    it may fit, which only tokenizing it whole tells."""
    if piece is None or len(text) <= piece:
        return None
    added = len(encode(""))  # the special tokens `encode` adds to every piece, to count once
    tokens = added
    start = 0
    while start < len(text):
        end = _cut(text, start, piece)
        tokens += len(encode(text[start:end])) - added
        if end < len(text):
            tokens -= CUT_SLACK
        if tokens > context:
            return Overflow(end, tokens)
        start = end
    return None


def within_context(text: str, encode: Callable[[str], list[int]], piece: int | None, context: int) -> str:
    """`text`, or where it is found to be over `context` tokens, its first characters that already are
    (ending where a piece was cut, before a space where there is one): truncated to at most `context`
    tokens, they give what the whole text does, as the tokens near a cut are past the context."""
    found = overflow(text, encode, piece, context)
    return text if found is None else text[: found.characters]


def _cut(text: str, start: int, piece: int) -> int:
    """Where the piece that begins at `start` ends: at most `piece` characters on, before a space that
    follows a word in the piece's second half if there is one (tokenizers split words there anyway)."""
    end = start + piece
    if end >= len(text):
        return len(text)
    earliest = start + piece // 2
    space = text.rfind(" ", earliest, end)
    while space > earliest and text[space - 1].isspace():
        space = text.rfind(" ", earliest, space)
    return space if space > earliest else end
