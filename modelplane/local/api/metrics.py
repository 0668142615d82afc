"""The control-plane API's own metrics: each request counted and timed by verb and resource, with
the Kubernetes API server's names and verbs (GET, LIST, WATCH, POST, PUT, PATCH, DELETE, APPLY)."""

from __future__ import annotations

import time
from typing import Any

from modelplane.local.api.http import ApiRequest, Send
from modelplane.local.platform_metrics import API_REQUESTS, API_SECONDS

APPLY_RESOURCE = "apply"


def request_labels(request: ApiRequest, apply_path: str) -> tuple[str, str]:
    """(verb, resource) of a request: `/apis/<group>/<version>/[namespaces/<ns>/]<plural>[/<name>[/status]]`
    names the resource `<plural>` (`<plural>/status`); other paths name none."""
    path = request.path.rstrip("/") or "/"
    if path == apply_path:
        return "APPLY", APPLY_RESOURCE
    parts = path.strip("/").split("/")
    rest = parts[3:] if parts[0] == "apis" else parts[2:] if parts[0] == "api" else []
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0] if rest else ""
    if len(rest) == 3 and rest[2] == "status":
        resource += "/status"
    verb = request.method
    if verb == "GET" and resource and len(rest) == 1:
        verb = "WATCH" if request.flag("watch") else "LIST"
    elif verb == "DELETE" and resource and len(rest) == 1:
        verb = "DELETECOLLECTION"  # as Kubernetes' apiserver_request_total names it
    return verb, resource


class MeasuredSend:
    """Wraps an ASGI `send` to learn the response's status; `done()` counts and times the request."""

    def __init__(self, send: Send, labels: tuple[str, str]) -> None:
        self._send = send
        self._labels = labels
        self._started = time.perf_counter()
        self.status = 500
        self.responding = False  # the response has begun: a failure now can only cut it

    async def __call__(self, message: dict[str, Any]) -> None:
        if message.get("type") == "http.response.start":
            self.status = message["status"]
            self.responding = True
        await self._send(message)

    def done(self) -> None:
        verb, resource = self._labels
        API_REQUESTS.labels(verb, resource, str(self.status)).inc()
        API_SECONDS.labels(verb, resource).observe(time.perf_counter() - self._started)
