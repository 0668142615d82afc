"""What both ends of the gateway's gRPC proxy share: an HTTP/2 connection that relays data.

`H2ClientConnection` (gateway/grpc/proxy.py, the clients' side) and `H2Upstream` (gateway/grpc/upstream.py, the
replicas' side) are modelplane's own HTTP/2 connections (modelplane/protocol/http2). Data received
on one side is acknowledged only once the other side has taken it, so flow control is end to end:
a slow reader slows its writer instead of filling the gateway's memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from modelplane.protocol.http2.connection import Http2Connection
from modelplane.protocol.http2.hpack import Headers
from modelplane.protocol.http2.limits import DEFAULT_LIMITS, Http2Limits

__all__ = ["H2Endpoint", "Headers"]

# Per stream and per connection: how much a peer may send before the gateway has passed it on.
RELAY_WINDOW = 1 << 20


class H2Endpoint(Http2Connection):
    def __init__(self, client_side: bool, limits: Http2Limits = DEFAULT_LIMITS) -> None:
        super().__init__(
            client_side=client_side, receive_window=RELAY_WINDOW, auto_acknowledge=False, limits=limits
        )
        self.idle_since: float | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.idle_since = self._loop.time()

    def relay(
        self, stream_id: int, queue: deque[list], passed_on: Callable[[int], None], end_stream: bool = False
    ) -> bool:
        """Sends the queued `[data, flow-controlled length]` chunks on `stream_id` as far as the
        peer's window allows, calling `passed_on(length)` for each chunk once it is all sent.
        True when the queue is empty; with `end_stream`, the stream is ended then too (with the
        last chunk, not in a frame of its own)."""
        while queue:
            item = queue[0]
            data = item[0]
            last = end_stream and len(queue) == 1
            sent = self.send_data(stream_id, data, end_stream=last)
            if sent < len(data):
                item[0] = data[sent:]
                return False
            queue.popleft()
            passed_on(item[1])
            if last:
                return True
        if end_stream:
            self.end_stream(stream_id)
        return True
