"""Each token's own bytes, for chat log probabilities' `bytes` (modelplane.runtimes.huggingface.token_bytes):
a token that is a piece of a character decodes alone to U+FFFD, and its bytes must be its own."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from tests.server.processes import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))
from huggingface_models import write_model  # noqa: E402

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from modelplane.runtimes.huggingface.token_bytes import TokenBytes  # noqa: E402

TEXT = "é日 ok 🙂"


@pytest.fixture(scope="module")
def byte_level(tmp_path_factory):
    """GPT-2's kind: byte-level BPE, trained on ASCII, so every other character is several tokens."""
    folder = write_model(tmp_path_factory.mktemp("token-bytes") / "gpt2", "gpt2")
    return transformers.AutoTokenizer.from_pretrained(folder)


def byte_fallback():
    """Llama 2's kind: SentencePiece-style BPE that writes a character it has no piece for byte by byte."""
    from tokenizers import decoders, models, normalizers

    vocab = {"<unk>": 0, **{f"<0x{byte:02X}>": 1 + byte for byte in range(256)}, "▁": 257, "o": 258, "k": 259}
    tokenizer = tokenizers.Tokenizer(models.BPE(vocab, [], unk_token="<unk>", byte_fallback=True))
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>")


def test_byte_level_tokens_have_their_own_bytes(byte_level):
    ids = byte_level(TEXT, add_special_tokens=False).input_ids
    own = TokenBytes(byte_level)
    pieces = [token for token in ids if byte_level.decode([token]) == "\ufffd"]
    assert pieces and all(len(own.of(token)) < 3 for token in pieces)
    assert b"".join(own.of(token) for token in ids) == TEXT.encode()


def test_byte_fallback_tokens_have_their_byte():
    tokenizer = byte_fallback()
    ids = tokenizer("éok", add_special_tokens=False).input_ids
    assert tokenizer.convert_ids_to_tokens(ids) == ["<0xC3>", "<0xA9>", "o", "k"]
    own = TokenBytes(tokenizer)
    assert [own.of(token) for token in ids] == [b"\xc3", b"\xa9", b"o", b"k"]


def test_special_tokens_are_their_text(byte_level):
    assert TokenBytes(byte_level).of(byte_level.eos_token_id) == byte_level.eos_token.encode()


def test_vllm_s_log_probabilities_get_the_tokens_own_bytes(byte_level):
    from modelplane.runtimes.huggingface.vllm_generator import _token_logprob

    first, second = byte_level("é", add_special_tokens=False).input_ids
    candidates = {
        first: SimpleNamespace(rank=2, logprob=-1.0, decoded_token="\ufffd"),
        second: SimpleNamespace(rank=1, logprob=-0.5, decoded_token="\ufffd"),
    }
    entry = _token_logprob(first, candidates, 2, TokenBytes(byte_level))
    assert entry.own_bytes() == b"\xc3"
    assert [own for _token, _logprob, own in entry.alternatives()] == [b"\xa9", b"\xc3"]
