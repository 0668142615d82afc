"""W3C Trace Context: reading a request's `traceparent` and `tracestate`, and writing them for the next hop.

Ids stay bytes from the header to the span and back: a trace id is 16 bytes, a span id 8.
"""

from __future__ import annotations

import binascii
import random
import re
from collections.abc import Iterable
from typing import NamedTuple

TRACEPARENT, TRACESTATE = b"traceparent", b"tracestate"
TRACE_HEADERS = (TRACEPARENT, TRACESTATE)
# version-traceid-parentid-flags, and what a later version may add after them.
_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z", re.S)
_ZERO_TRACE, _ZERO_SPAN = b"0" * 32, b"0" * 16
_HEX_AND_DASH = b"0123456789abcdef-"
_SAMPLED_FLAGS = frozenset(b"13579bdf")  # the last hex digit of flags whose sampled bit (1) is set


class Parent(NamedTuple):
    """The caller's span, as its `traceparent` names it (ids in hex, as they came)."""

    trace_hex: bytes
    span_hex: bytes
    sampled: bool
    trace_state: str  # the `tracestate` that came with it, "" when none

    @property
    def trace_id(self) -> bytes:
        return binascii.a2b_hex(self.trace_hex)

    @property
    def span_id(self) -> bytes:
        return binascii.a2b_hex(self.span_hex)


def incoming(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, bytes | None]:
    """A request's `traceparent` and `tracestate` (several of these joined by commas), None when absent."""
    traceparent = tracestate = None
    for name, value in headers:
        lower = name.lower()
        if lower == TRACEPARENT:
            traceparent = value
        elif lower == TRACESTATE:
            tracestate = value if tracestate is None else tracestate + b"," + value
    return traceparent, tracestate


def parse(traceparent: bytes, tracestate: bytes | None) -> Parent | None:
    """The parent a `traceparent` names, or None when it is not a valid one (then a trace begins here)."""
    value = traceparent.strip()
    if (  # version 00, the one in use: read without the regular expression, at a third of its cost
        len(value) == 55
        and value.startswith(b"00-")
        and value[35] == value[52] == 45  # b"-"
        and value.count(b"-") == 3
        and not value.translate(None, _HEX_AND_DASH)
    ):
        trace_hex, span_hex = value[3:35], value[36:52]
        if trace_hex == _ZERO_TRACE or span_hex == _ZERO_SPAN:
            return None
        state = tracestate.decode("latin-1").strip() if tracestate else ""
        return Parent(trace_hex, span_hex, value[54] in _SAMPLED_FLAGS, state)
    found = _TRACEPARENT.match(value)
    if found is None:
        return None
    version, trace_hex, span_hex, flags, rest = found.groups()
    if version == b"ff" or (version == b"00" and rest) or trace_hex == _ZERO_TRACE or span_hex == _ZERO_SPAN:
        return None
    state = tracestate.decode("latin-1").strip() if tracestate else ""
    return Parent(trace_hex, span_hex, bool(int(flags, 16) & 1), state)


def header_lines(trace_id: bytes, span_id: bytes, sampled: bool, trace_state: str) -> bytes:
    """`traceparent` (and `tracestate`) header lines naming a span, each ending in CRLF."""
    line = b"traceparent: 00-%s-%s-%s\r\n" % (_hex(trace_id), _hex(span_id), b"01" if sampled else b"00")
    if trace_state:
        line += b"tracestate: %s\r\n" % trace_state.encode("latin-1")
    return line


def header_pair(trace_id: bytes, span_id: bytes, sampled: bool) -> tuple[bytes, bytes]:
    """The `traceparent` header naming a span, as an HTTP/2 header (name, value)."""
    return TRACEPARENT, b"00-%s-%s-%s" % (_hex(trace_id), _hex(span_id), b"01" if sampled else b"00")


def unsampled_traceparent() -> str:
    """A `traceparent` value of a new trace its sender does not sample: the platform's own calls to a
    replica send it, so that a replica whose sampler follows its caller (the default) traces none."""
    return f"00-{new_trace_id().hex()}-{new_span_id().hex()}-00"


def without_trace_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """HTTP/2 headers (lowercase names) without their traceparent and tracestate."""
    return [(name, value) for name, value in headers if name not in TRACE_HEADERS]


def without_trace_lines(block: bytes) -> bytes:
    """A block of `Name: value\r\n` header lines without its traceparent and tracestate."""
    if b"trace" not in block.lower():
        return block
    lines = block.split(b"\r\n")
    kept = [line for line in lines if line.split(b":", 1)[0].strip().lower() not in TRACE_HEADERS]
    return b"\r\n".join(kept)


def new_trace_id() -> bytes:
    return _random_bits(128).to_bytes(16, "big")  # randbytes(16) is getrandbits and to_bytes, in Python


def new_span_id() -> bytes:
    return _random_bits(64).to_bytes(8, "big")


_random_bits = random.getrandbits
_hex = binascii.b2a_hex  # bytes to lowercase hex, as bytes
