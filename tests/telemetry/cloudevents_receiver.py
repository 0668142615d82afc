"""A CloudEvents receiver for the tests: a real HTTP server on a loopback port, on a thread, that
parses each request with the cloudevents SDK and keeps the events. It can be stopped and started
again on the same port, as a sink that goes away and comes back. Requests pipelined on a connection
are answered one after the other, in order; a slow receiver takes `delay` seconds over each."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat


class CloudEventsReceiver:
    """`close_each`: answer each event with `Connection: close` and close, as a receiver without
    keep-alive does. `delay`: the seconds it takes over each event before it keeps it and answers, or
    a function of the event's id that says them."""

    def __init__(
        self, port: int = 0, close_each: bool = False, delay: float | Callable[[str], float] = 0.0
    ) -> None:
        self.port = port
        self.close_each = close_each
        self.delay = delay
        self.connections_accepted = 0
        self.events: list[BaseCloudEvent] = []
        self.raw_headers: list[dict[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> CloudEventsReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the gateway's client expects

            def setup(self) -> None:
                super().setup()
                receiver._connections.add(self.connection)
                receiver.connections_accepted += 1

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                event = from_http(HTTPMessage(headers, body), JSONFormat())
                delay = receiver.delay
                time.sleep(delay(event.get_id()) if callable(delay) else delay)
                with receiver._lock:
                    receiver.events.append(event)
                    receiver.raw_headers.append(headers)
                self.send_response(202)
                self.send_header("content-length", "0")
                if receiver.close_each:
                    self.send_header("connection", "close")
                    self.close_connection = True
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_tls(self, context: ssl.SSLContext) -> None:
        """Take connections over TLS from now on (an https:// receiver), with `context`'s certificate."""
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    def stop(self) -> None:
        """Stops listening and cuts the connections it holds (kept-alive ones too)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._connections.clear()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[BaseCloudEvent]:
        """The events, once there are at least `count` of them."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.events)} events arrived, not {count}: {self.events}")
            time.sleep(0.02)
        with self._lock:
            return list(self.events)
