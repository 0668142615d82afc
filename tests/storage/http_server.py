"""A plain HTTP file server for the storage tests, with ways to misbehave.

    python http_server.py ROOT [--port N] [--die-after BYTES] [--cut-first BYTES] [--cut-always BYTES] [--no-ranges]

Prints `listening on <port>` once ready. It serves files under ROOT with Content-Length, ETag,
Last-Modified and byte ranges, and counts what it sent at `/__stats`.
--die-after: the process exits abruptly once it has sent that many body bytes (a server killed midway).
--cut-first: the first response is cut off after that many body bytes (a dropped connection).
--cut-always: every response is cut off after that many body bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    options: argparse.Namespace
    lock = threading.Lock()
    stats = {"requests": 0, "body_bytes": 0, "cuts": 0}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/__stats":
            self._send_bytes(200, json.dumps(self.stats).encode(), "application/json")
            return
        path = Path(self.options.root, self.path.lstrip("/").split("?")[0])
        if not path.is_file():
            self._send_bytes(404, b"not found", "text/plain")
            return
        if self.path.startswith("/private/") and self.headers.get("Authorization") != "Bearer let-me-in":
            self._send_bytes(403, b"forbidden", "text/plain")
            return
        with self.lock:
            self.stats["requests"] += 1
        stat = path.stat()
        size = stat.st_size
        start, end, status = 0, size, 200
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and not self.options.no_ranges:
            if int(match[1]) >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(match[1])
            end = min(size, int(match[2]) + 1) if match[2] else size
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", f'"{stat.st_mtime_ns:x}-{size:x}"')
        if not self.options.no_ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        self._send_file(path, start, end)

    def _send_file(self, path: Path, start: int, end: int) -> None:
        options, stats = self.options, self.stats
        sent_here = 0
        with open(path, "rb") as handle:
            handle.seek(start)
            while sent_here < end - start:
                data = handle.read(min(64 * 1024, end - start - sent_here))
                with self.lock:
                    limit = options.cut_first if not stats["cuts"] else None
                    limit = options.cut_always if options.cut_always is not None else limit
                    cut = limit is not None and sent_here + len(data) > limit
                    if cut:
                        stats["cuts"] += 1
                        data = data[: limit - sent_here]
                    die = (
                        options.die_after is not None and stats["body_bytes"] + len(data) >= options.die_after
                    )
                    stats["body_bytes"] += len(data)
                self.wfile.write(data)
                if die:
                    self.wfile.flush()
                    os._exit(1)
                if cut:
                    self.wfile.flush()
                    self.close_connection = True
                    return
                sent_here += len(data)

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--die-after", type=int)
    parser.add_argument("--cut-first", type=int)
    parser.add_argument("--cut-always", type=int)
    parser.add_argument("--no-ranges", action="store_true")
    Handler.options = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", Handler.options.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
