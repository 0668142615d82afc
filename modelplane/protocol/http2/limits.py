"""What an HTTP/2 peer may ask of a connection before it is told to calm down.

Every limit has a default that no well-behaved client comes near; docs/security.md lists them with how
each is answered. The numbers follow nghttp2 and Envoy where they have one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Http2Limits:
    """Per connection.

    - `max_concurrent_streams`: advertised in SETTINGS. A stream beyond it is refused (REFUSED_STREAM)
      until the peer has acknowledged our SETTINGS, and a PROTOCOL_ERROR for the connection after.
    - `max_header_list_size`: advertised in SETTINGS, counted on the decoded list as RFC 7541 counts it
      (name + value + 32 per field). A list above it resets its stream with ENHANCE_YOUR_CALM (gRPC
      clients report RESOURCE_EXHAUSTED); a block that would decode to twice as much, or is that large
      before decoding, is not decoded further and ends the connection.
    - `max_continuation_frames`: CONTINUATION frames in one header block (empty ones too).
    - `reset_burst`, `reset_rate`: streams the peer may reset before they are answered (rapid reset,
      CVE-2023-44487): a bucket of `reset_burst` tokens, refilled `reset_rate` a second and one for each
      stream that ends normally. Empty, the connection ends with GOAWAY ENHANCE_YOUR_CALM. nghttp2's
      defaults.
    - `control_frame_burst`, `control_frame_rate`: frames that make no progress (PING, SETTINGS,
      WINDOW_UPDATE, PRIORITY, empty DATA, frames of unknown type, resets of closed streams, refused
      streams): the same kind of bucket, refilled `control_frame_rate` a second and one for each frame
      we send. Empty, GOAWAY ENHANCE_YOUR_CALM.
    - `max_settings_entries`: entries in one SETTINGS frame (nghttp2's default).
    - `write_buffer_high`: answers and acknowledgements not yet taken by a peer that does not read; above
      this much the connection stops reading until the peer catches up (server side only: a server owes
      answers, and a client that stops reading must not make it queue more).
    """

    max_concurrent_streams: int = 1024
    max_header_list_size: int = 64 * 1024
    max_continuation_frames: int = 16
    reset_burst: int = 1000
    reset_rate: float = 33.0
    control_frame_burst: int = 1000
    control_frame_rate: float = 100.0
    max_settings_entries: int = 32
    write_buffer_high: int = 1024 * 1024


DEFAULT_LIMITS = Http2Limits()


class TokenBucket:
    """`burst` tokens, refilled `rate` a second and one for each thing earned; `take` says whether one
    was left.

    What is earned is a running count kept by the caller (streams answered, frames sent) and handed to
    `take`: counting it costs the caller an addition, and the bucket adds what was earned since it was
    last asked."""

    __slots__ = ("tokens", "burst", "rate", "_refilled_at", "_earned")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.tokens = float(burst)
        self.burst = burst
        self.rate = rate
        self._refilled_at = now
        self._earned = 0

    def take(self, now: float, earned: int) -> bool:
        tokens = self.tokens + (now - self._refilled_at) * self.rate + (earned - self._earned)
        self._refilled_at, self._earned = now, earned
        if tokens > self.burst:
            tokens = self.burst
        if tokens < 1:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1
        return True
