"""A replica that answers every GET with Prometheus text naming the path it was asked for: a scrape
of it says which path the platform read."""

from __future__ import annotations

import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class PathEcho(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f'# TYPE scraped_path gauge\nscraped_path{{path="{self.path}"}} 1\n'.encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain; version=0.0.4")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), PathEcho).serve_forever()
