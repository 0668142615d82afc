"""modelplane's HPACK decoder and encoder against the `hpack` package, an independent implementation."""

from __future__ import annotations

import os
import random

import hpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.protocol.http2.hpack import Decoder, HpackError, encode

NAMES = [
    b":path",
    b":method",
    b"content-type",
    b"grpc-timeout",
    b"user-agent",
    b"x-request-id",
    b"te",
    b"x-a",
]


def random_headers(rng: random.Random) -> list[tuple[bytes, bytes]]:
    headers = []
    for _ in range(rng.randint(1, 12)):
        name = rng.choice(NAMES)
        value = bytes(rng.choice(b"abcxyz0123456789-_/ ") for _ in range(rng.choice([0, 1, 5, 40, 300])))
        headers.append((name, value))
    return headers


@pytest.mark.parametrize("huffman", [False, True])
def test_decodes_what_the_hpack_package_encodes(huffman):
    rng = random.Random(11)
    encoder, decoder = hpack.Encoder(), Decoder()
    for round_number in range(400):
        if round_number % 50 == 25:
            encoder.header_table_size = rng.choice([0, 256, 4096])  # sent as a table size update
        headers = random_headers(rng)
        sensitive = [
            hpack.NeverIndexedHeaderTuple(n, v) if rng.random() < 0.1 else (n, v) for n, v in headers
        ]
        block = encoder.encode(sensitive, huffman=huffman)
        assert decoder.decode(block) == headers


def test_a_block_of_table_references_is_decoded_against_the_current_table():
    encoder, decoder = hpack.Encoder(), Decoder()
    first = encoder.encode([(b"x-a", b"1")])  # added to both tables as entry 62
    assert decoder.decode(first) == [(b"x-a", b"1")]
    reference = b"\xbe"  # indexed field 62
    assert decoder.decode(reference) == [(b"x-a", b"1")]
    assert decoder.decode(encoder.encode([(b"x-b", b"2")])) == [(b"x-b", b"2")]  # now entry 62
    assert decoder.decode(reference) == [(b"x-b", b"2")]


def test_our_blocks_decode_with_the_hpack_package():
    rng = random.Random(5)
    for _ in range(100):
        headers = random_headers(rng)
        assert hpack.Decoder().decode(encode(headers), raw=True) == headers


@pytest.mark.parametrize(
    "block",
    [
        b"\x80",  # index 0
        b"\xff\x80",  # an index past both tables
        b"\x40\x05ab",  # a literal name shorter than its length
        b"\x3f\xe1\x7f",  # a table size above the 4096 allowed
        b"\x82\x20",  # a table size update after a field
        b"\xff\xff\xff\xff\xff\xff\x01",  # an integer longer than 4 bytes
    ],
)
def test_malformed_blocks_are_refused(block):
    with pytest.raises(HpackError):
        Decoder().decode(block)


def test_our_blocks_use_the_static_table():
    block = encode([(b":status", b"200"), (b"content-type", b"application/grpc")])
    assert block.startswith(b"\x88\x0f\x10")  # index 8; then a literal whose name is index 31
    assert hpack.Decoder().decode(block, raw=True) == [
        (b":status", b"200"),
        (b"content-type", b"application/grpc"),
    ]


# -- fuzzed against the hpack package ---------------------------------------------------------------

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
header_lists = st.lists(
    st.tuples(st.sampled_from(NAMES) | st.binary(min_size=1, max_size=12), st.binary(max_size=60)), max_size=8
)


@FUZZ
@given(
    blocks=st.lists(
        st.tuples(header_lists, st.booleans(), st.sampled_from([None, 0, 64, 256, 4096])),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz_decodes_what_the_hpack_package_encodes(blocks):
    """Any headers, Huffman or not, with the table resized between blocks: the same list comes out."""
    encoder, decoder = hpack.Encoder(), Decoder()
    for headers, huffman, table_size in blocks:
        if table_size is not None:
            encoder.header_table_size = table_size
        assert decoder.decode(encoder.encode(headers, huffman=huffman)) == headers


def decoded_by_both(block: bytes, theirs: hpack.Decoder, ours: Decoder):
    """What each decoder makes of `block`: the list, or None when it refuses it.

    One difference is on purpose: the hpack package takes any number of table size updates at the start
    of a block, modelplane the two an encoder may send (RFC 7541 §4.2)."""
    try:
        expected = theirs.decode(block, raw=True)
    except (
        hpack.HPACKError,
        hpack.HPACKDecodingError,
        hpack.InvalidTableIndex,
        hpack.OversizedHeaderListError,
    ):
        expected = None
    try:
        actual = ours.decode(block)
    except HpackError as exc:
        actual = expected if "more than two table size updates" in str(exc) else None
    return expected, actual


@FUZZ
@given(data=st.data(), headers=header_lists, huffman=st.booleans())
def test_fuzz_a_damaged_block_is_refused_or_read_as_the_hpack_package_reads_it(data, headers, huffman):
    """An encoded block with bytes changed, cut or added: both decoders refuse it, or agree on it."""
    block = bytearray(hpack.Encoder().encode(headers, huffman=huffman))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        position = data.draw(st.integers(0, len(block)))
        if action == "flip" and position < len(block):
            block[position] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del block[position:]
        else:
            block[position:position] = data.draw(st.binary(min_size=1, max_size=3))
    expected, actual = decoded_by_both(bytes(block), hpack.Decoder(max_header_list_size=2**31), Decoder())
    assert actual == expected


@FUZZ
@given(block=st.binary(max_size=120))
def test_fuzz_random_bytes_are_refused_or_read_as_the_hpack_package_reads_them(block):
    expected, actual = decoded_by_both(block, hpack.Decoder(max_header_list_size=2**31), Decoder())
    assert actual == expected
