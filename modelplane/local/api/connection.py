"""The API's HTTP/1.1 connections: uvicorn's, held to the limits modelplane's other servers keep on
what a client may hold before anything is known of it (docs/security.md).

- A request head larger than `MAX_HEAD_BYTES` is a 431, counted as its bytes arrive, before the parser
  sees them (the parser's cost grows faster than a header's size).
- A head must arrive within `HEAD_TIMEOUT` of the connection opening, or of the answer before it: a
  connection that sends none is closed, one that has sent part of one gets a 408 first (slowloris).

Both come before the bearer token is checked, so a client without one cannot hold the API up.

A restart in place hands a connection over, between two requests, to the program it runs next
(`hand_over_when_idle`): the client's next request waits in the kernel for that program rather than
meeting a connection closed under it. A TLS connection goes on through a relay that keeps its session
(tls_handover.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelplane.local.api.errors import ApiError
from modelplane.local.api.tls_handover import relayable, relayed_across_exec
from modelplane.local.replicas.inherited import kept_across_exec
from modelplane.protocol.http1_guard import HeadCounter
from modelplane.protocol.http1_wire import status_line
from modelplane.protocol.lingering import LingeringClose

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 10.0


class GuardedConnection(HttpToolsProtocol):
    """uvicorn's httptools connection, with the head's size and time limited."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._head = HeadCounter(MAX_HEAD_BYTES)
        self._head_timer: asyncio.TimerHandle | None = None
        self._lingering: LingeringClose | None = None
        self._reading_request = False  # bytes of a request have arrived that no answer is under way for
        self._hand_over: Callable[[int], None] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._lingering.drop(data)
            return
        if self._head.count is not None and not self._head.add(data):
            self._refuse(431, "RequestHeaderFieldsTooLarge", self._head.refusal().message)
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_request = True

    def on_headers_complete(self) -> None:
        self._head.stop()
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_request = False
        super().on_message_complete()
        self._head.start()  # what follows is the next request's head

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._hand_over is not None and self._try_hand_over():
            return
        if not self.transport.is_closing():
            self._await_head()

    def hand_over_when_idle(self, to: Callable[[int], None]) -> None:
        """For a restart in place: once no request is under way on this connection (now, or when the
        answer under way has gone out), gives `to` a descriptor of it kept open across `exec` and closes
        it here without a word to the client. A TLS connection is handed over as the plain end of a
        relay that keeps its session (tls_handover.py), where its TLS allows it."""
        if self.transport.get_extra_info("sslcontext") is None or relayable(self.transport):
            self._hand_over = to
            self._try_hand_over()

    def _try_hand_over(self) -> bool:
        between_requests = (
            not self._reading_request
            and (self.cycle is None or self.cycle.response_complete)
            and not self.pipeline
            and self._lingering is None
            and not self.transport.is_closing()
            and not self.transport.get_write_buffer_size()  # the last answer has all gone out
        )
        if not between_requests or self._hand_over is None:
            return False
        if relayable(self.transport):
            handed = relayed_across_exec(self.transport)
            if handed is None:
                return False
        else:
            handed = kept_across_exec(self.transport.get_extra_info("socket"))
        self._hand_over(handed)
        self.transport.abort()  # closes this descriptor only: the connection lives on in the copy
        return True

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._head.count:
            self._refuse(408, "Timeout", f"the request head did not arrive within {HEAD_TIMEOUT:g} s")
        else:
            self.transport.close()

    def _refuse(self, code: int, reason: str, message: str) -> None:
        """Answers `code` with a Kubernetes Status and closes the connection, reading nothing more."""
        self._stop_head_timer()
        refusal = ApiError(message)
        refusal.code, refusal.reason = code, reason
        body = orjson.dumps(refusal.to_status())
        head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(
            body
        )
        self.transport.write(status_line(code) + head + body)
        self._lingering = LingeringClose(self.transport)
