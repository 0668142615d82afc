"""What the small replica programs of the e2e tests share: a quiet HTTP server on $PORT that answers
each GET with the body its subclass makes."""

from __future__ import annotations

import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class SmallReplica(BaseHTTPRequestHandler):
    content_type = "text/plain"

    def body(self) -> bytes:
        raise NotImplementedError

    def do_GET(self) -> None:
        body = self.body()
        self.send_response(200)
        self.send_header("content-type", self.content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def serve(handler: type[SmallReplica]) -> None:
    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), handler).serve_forever()
