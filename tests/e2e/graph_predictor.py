"""A custom predictor for the InferenceGraph end-to-end tests, standing for KServe's e2e graph models.

    python graph_predictor.py --model_name NAME --behaviour success|error|headers

It listens on `PORT` and answers `POST /v1/models/NAME:predict`:

- `success`: 200 `{"predictions":[{"message":"SUCCESS"}]}` (KServe's `success-200-isvc`);
- `error`: 404 `{"detail":"Intentional 404 code"}` (KServe's `error-404-isvc`);
- `headers`: 200 `{"headers": {name: value}}`, the request's headers (names in lower case).

`?delay_ms=N` on the predict URL answers after N ms. Any other POST path is a 404 `{"detail":"Not Found"}`,
so a graph that resolved the wrong URL notices. `GET /v2/health/ready` answers 200; `GET /requests` answers
the bodies of the predict requests received so far (and `?clear=1` forgets them).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ANSWERS = {
    "success": (200, {"predictions": [{"message": "SUCCESS"}]}),
    "error": (404, {"detail": "Intentional 404 code"}),
}


def handler(model_name: str, behaviour: str) -> type[BaseHTTPRequestHandler]:
    received: list = []
    lock = threading.Lock()
    predict_path = f"/v1/models/{model_name}:predict"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            if url.path == "/requests":
                with lock:
                    answer = list(received)
                    if "clear" in parse_qs(url.query):
                        received.clear()
                self._answer(200, answer)
            elif url.path == "/v2/health/ready":
                self._answer(200, {"ready": True})
            else:
                self._answer(404, {"detail": "Not Found"})

        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urlsplit(self.path)
            if url.path != predict_path:
                self._answer(404, {"detail": "Not Found"})
                return
            with lock:
                received.append(json.loads(body or b"null"))
            delay = parse_qs(url.query).get("delay_ms")
            if delay:
                time.sleep(float(delay[-1]) / 1000)
            if behaviour == "headers":
                self._answer(200, {"headers": {k.lower(): v for k, v in self.headers.items()}})
            else:
                self._answer(*ANSWERS[behaviour])

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--behaviour", choices=[*ANSWERS, "headers"], required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(
        ("127.0.0.1", int(os.environ["PORT"])), handler(args.model_name, args.behaviour)
    )
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
