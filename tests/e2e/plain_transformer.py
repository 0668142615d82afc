"""A transformer not built on modelplane: plain Python that calls its predictor at the address KServe
gives it, `--predictor_host`, which `modelplane up` makes `<isvc>-predictor.<namespace>.localhost:<port>`.
It turns millimetres into centimetres; a predictor it cannot reach is a 502 that says why."""

from __future__ import annotations

import argparse
import json
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--model_name", required=True)
parser.add_argument("--predictor_host", required=True)
parser.add_argument("--http_port", type=int, required=True)
args, _ = parser.parse_known_args()
# No proxy from the environment: the predictor's name is resolved here, by urllib through the socket module.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Transformer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the readiness probe
        self.answer(200, {})

    def do_POST(self) -> None:
        rows = json.loads(self.rfile.read(int(self.headers["content-length"])))["instances"]
        url = f"http://{args.predictor_host}/v1/models/{args.model_name}:predict"
        body = json.dumps({"instances": [[value / 10 for value in row] for row in rows]}).encode()
        request = urllib.request.Request(url, body, {"content-type": "application/json"})
        try:
            with opener.open(request, timeout=60) as response:
                self.answer(response.status, json.load(response))
        except OSError as exc:  # the name not resolved is a URLError, an OSError
            self.answer(502, {"error": f"{url}: {exc}"})

    def answer(self, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", args.http_port), Transformer).serve_forever()
