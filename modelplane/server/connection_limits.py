"""How long the model server waits for its clients, and how much each may hold: `modelplane serve`'s
connection flags, with their defaults (docs/security.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelplane.protocol.http2.limits import Http2Limits

# Idle keep-alive connections are closed after this long: above the 60 s idle timeout of common load
# balancers, so they, not the server, close idle connections (no request races a close).
KEEP_ALIVE_SECONDS = 65.0


@dataclass(frozen=True)
class ConnectionLimits:
    """For both ports, unless a field says otherwise.

    - `header_timeout`: REST: the request line and headers must arrive within this, counted from their
      first byte (from the connection's opening for its first request). 408, and the connection closes.
    - `body_timeout`: a request body (a gRPC message) that does not move for this long is answered
      (REST 408, gRPC CANCELLED) and its connection (REST) or stream (gRPC) closed.
    - `idle_timeout`: a connection with nothing under way for this long is closed (gRPC: GOAWAY first).
    - `max_idle_connections`: REST: connections not being answered (between requests, or still sending
      one); a new one past this closes the one idle the longest.
    - `max_header_bytes`, `max_header_count`: REST: the request head (431).
    - `http2`: the gRPC port's HTTP/2 limits.
    """

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = KEEP_ALIVE_SECONDS
    max_idle_connections: int = 1024
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    http2: Http2Limits = field(default_factory=Http2Limits)
