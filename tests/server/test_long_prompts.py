"""Refusing a prompt far over the context from bounded pieces of it (modelplane.server.long_prompts),
and the bound on the characters a token stands for that the huggingface runtime gives it."""

from __future__ import annotations

import re
import sys

import pytest

from modelplane.server.long_prompts import overflow, piece_length, within_context
from tests.server.processes import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import SENTENCES, write_model  # noqa: E402


class Words:
    """A tokenizer whose tokens are words (whitespace is dropped, as BERT's drops it), and that keeps
    the length of every text it is given."""

    def __init__(self, added: int = 0):
        self.added = added
        self.lengths: list[int] = []

    def encode(self, text: str) -> list[int]:
        self.lengths.append(len(text))
        return [0] * (self.added + len(text.split()))


def test_a_text_far_over_the_context_is_refused_from_its_first_piece():
    words = Words(added=2)
    text = "word " * 200_000
    found = overflow(text, words.encode, piece_length(5, 100), 100)
    assert found is not None and found.tokens > 100
    assert max(words.lengths) <= 1000 == piece_length(5, 100)
    assert found.characters <= 1000  # a piece ends before a space
    assert text[found.characters] == " "


def test_a_text_no_longer_than_a_piece_is_left_to_the_exact_count():
    words = Words()
    assert overflow("word " * 200, words.encode, 1000, 100) is None
    assert words.lengths == []


def test_a_long_text_of_few_tokens_fits():
    """Its tokenizer drops whitespace: counted piece by piece, it fits, and is then tokenized whole."""
    text = "hello" + " " * 100_000 + "world"
    assert overflow(text, Words().encode, 1000, 100) is None


def test_a_word_cut_in_pieces_is_not_counted_once_a_piece():
    """BERT makes one [UNK] of a long word: the pieces of a cut word must not add up to the context."""

    def unknown_words(text: str) -> list[int]:
        return [0] * len(re.findall(r"\S+", text))

    assert overflow("a" * 1_000_000, unknown_words, 1000, 100) is None


def test_a_text_to_truncate_is_cut_to_a_prefix_already_over_the_context():
    words = Words(added=2)
    text = "word " * 200_000
    prefix = within_context(text, words.encode, 1000, 100)
    assert text.startswith(prefix) and len(prefix) <= 1000 and text[len(prefix)] == " "
    assert len(words.encode(prefix)) > 100 + 8  # past the context by more than a cut may change
    assert max(words.lengths) <= 1000


def test_a_text_to_truncate_that_fits_or_is_short_is_left_whole():
    spaced = "hello" + " " * 100_000 + "world"
    assert within_context(spaced, Words().encode, 1000, 100) is spaced
    short = "word " * 150
    assert within_context(short, Words().encode, 1000, 100) is short


def test_without_a_bound_every_text_is_tokenized_whole():
    assert piece_length(None, 100) is None
    assert overflow("word " * 100_000, Words().encode, None, 100) is None


def test_a_piece_has_at_most_a_million_characters_whatever_the_context():
    assert piece_length(64, 1 << 20) == 1 << 20


@pytest.mark.parametrize("kind", ["gpt2", "t5", "text_embedding"])
def test_no_token_stands_for_more_characters_than_the_bound(tmp_path, kind):
    transformers = pytest.importorskip("transformers")
    from modelplane.runtimes.huggingface.prompts import most_characters_per_token

    tokenizer = transformers.AutoTokenizer.from_pretrained(write_model(tmp_path / kind, kind))
    bound = most_characters_per_token(tokenizer)
    assert bound == max(len(tokenizer.decode([token])) for token in range(len(tokenizer))) + 1
    for text in SENTENCES:
        assert len(text) <= bound * len(tokenizer(text, add_special_tokens=False).input_ids)
