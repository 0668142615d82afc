"""The validating admission webhook: `POST /validate` takes an AdmissionReview v1 and answers with the
admission `modelplane up` runs (`modelplane.control.admission`), refusing with the same message
(`InferenceService.serving.kserve.io "iris" is invalid: ...`), which the API server passes on as
`admission webhook "..." denied the request: <message>`.

Every replica serves it (not only the leader), over TLS: the API server only calls webhooks over
HTTPS. An update that leaves the spec as it was (finalizers, labels, a deletion under way) is allowed
as it is, so that a resource stored before the webhook was installed can still be finalized.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from modelplane.api import AdmissionConfig, ValidationError
from modelplane.api.kinds import CLUSTER_SERVING_RUNTIME, SERVING_RUNTIME, kind_of
from modelplane.control.admission import admit_with_platform_checks, refusal_message
from modelplane.kube.operator import resources as r
from modelplane.kube.operator.cluster import Cluster

logger = logging.getLogger("modelplane.operator.webhook")
VALIDATE_PATH = "/validate"


class AdmissionWebhook:
    """The ASGI application."""

    def __init__(self, cluster: Cluster, config: AdmissionConfig) -> None:
        self.cluster = cluster
        self.config = config

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] in ("/healthz", "/readyz"):
            await _send(send, 200, {"status": "ok"})
            return
        if scope["path"] != VALIDATE_PATH or scope["method"] != "POST":
            await _send(send, 404, {"error": f"{scope['method']} {scope['path']} is not served here"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            request = json.loads(body)["request"]
            uid = request["uid"]
        except (ValueError, KeyError, TypeError):
            await _send(send, 400, {"error": "the body must be an AdmissionReview with a request"})
            return
        response = await self.review(request)
        await _send(
            send,
            200,
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": uid, **response},
            },
        )

    async def review(self, request: dict) -> dict:
        """`{"allowed": True}`, or a refusal with the admission's message."""
        obj, old = request.get("object") or {}, request.get("oldObject")
        if request.get("operation") not in ("CREATE", "UPDATE") or _spec_unchanged(obj, old):
            return {"allowed": True}
        try:
            admit_with_platform_checks(obj, old=old, existing=await self._others(obj), config=self.config)
        except ValidationError as error:
            message = refusal_message(obj, error)
            logger.info("refused: %s", message)
            return {"allowed": False, "status": {"code": 422, "reason": "Invalid", "message": message}}
        return {"allowed": True}

    async def _others(self, obj: dict) -> list[dict]:
        """The other runtimes of the same kind and scope, which priorities are checked against."""
        kind = kind_of(obj)
        name = (obj.get("metadata") or {}).get("name")
        if kind == SERVING_RUNTIME:
            found = await self.cluster.list(
                r.SERVING_RUNTIMES, (obj.get("metadata") or {}).get("namespace") or "default"
            )
        elif kind == CLUSTER_SERVING_RUNTIME:
            found = await self.cluster.list(r.CLUSTER_SERVING_RUNTIMES)
        else:
            return []
        return [o for o in found if o["metadata"]["name"] != name]


def _spec_unchanged(obj: dict, old: dict | None) -> bool:
    if old is None:
        return False
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return True
    return obj.get("spec") == old.get("spec") and _annotations(obj) == _annotations(old)


def _annotations(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


async def _send(send, status: int, body: dict) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
