"""A replica that holds each POST until the file `$RELEASE`, `$RELEASE.<its port>` or `$RELEASE.<hold>`
(`hold` from the request's JSON body, if it names one) exists, then answers with its revision and port.
Each POST it has received is a line in `$MARKS` (`<revision> <port>`), so a test knows when its requests
are in flight, and so is a SIGTERM (`stopped <port>`), after which it exits."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Held(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer({"ready": True})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        mark(f"{os.environ['K_REVISION']} {os.environ['PORT']}")
        release = os.environ["RELEASE"]
        releases = [Path(release), Path(f"{release}.{os.environ['PORT']}")]
        if isinstance(body, dict) and body.get("hold"):
            releases.append(Path(f"{release}.{body['hold']}"))
        while not any(path.exists() for path in releases):
            time.sleep(0.05)
        self._answer({"revision": os.environ["K_REVISION"], "port": os.environ["PORT"]})

    def _answer(self, content: dict) -> None:
        body = json.dumps(content).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def mark(line: str) -> None:
    with Path(os.environ["MARKS"]).open("a") as marks:
        marks.write(f"{line}\n")


def stopped(signum: int, frame: object) -> None:
    mark(f"stopped {os.environ['PORT']}")
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stopped)
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Held).serve_forever()
