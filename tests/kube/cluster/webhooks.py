"""Validating admission webhooks, called as the API server calls them: for each create or update of
an object that a ValidatingWebhookConfiguration's rules match, an AdmissionReview v1 to the webhook's
`clientConfig.url`, over TLS checked against its `caBundle`."""

from __future__ import annotations

import base64
import ssl
import uuid

import httpx

from .kinds import ApiKind
from .store import ApiError, Store

CONFIGURATIONS = ApiKind(
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
    namespaced=False,
)


def _matches(rule: dict, kind: ApiKind, operation: str) -> bool:
    def has(values: list | None, value: str) -> bool:
        return bool(values) and ("*" in values or value in values)

    return (
        has(rule.get("apiGroups"), kind.group)
        and has(rule.get("apiVersions"), kind.version)
        and has(rule.get("resources"), kind.plural)
        and has(rule.get("operations"), operation)
    )


async def review(store: Store, kind: ApiKind, operation: str, obj: dict, old: dict | None) -> list[str]:
    """Sends `obj` to every webhook whose rules match; ApiError when one denies it (or cannot be
    called, with failurePolicy Fail). Returns the webhooks' warnings."""
    warnings: list[str] = []
    for configuration in store.list(CONFIGURATIONS, None):
        for webhook in configuration.get("webhooks") or []:
            if not any(_matches(rule, kind, operation) for rule in webhook.get("rules") or []):
                continue
            warnings += await _call(webhook, kind, operation, obj, old)
    return warnings


async def _call(webhook: dict, kind: ApiKind, operation: str, obj: dict, old: dict | None) -> list[str]:
    name = webhook["name"]
    config = webhook.get("clientConfig") or {}
    metadata = obj.get("metadata") or {}
    request_uid = str(uuid.uuid4())
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": request_uid,
            "kind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
            "resource": {"group": kind.group, "version": kind.version, "resource": kind.plural},
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "operation": operation,
            "userInfo": {"username": "test"},
            "object": obj,
            "oldObject": old,
            "dryRun": False,
        },
    }
    context = ssl.create_default_context()
    if config.get("caBundle"):
        context = ssl.create_default_context(cadata=base64.b64decode(config["caBundle"]).decode())
    seconds = float(webhook.get("timeoutSeconds") or 10)
    try:
        async with httpx.AsyncClient(verify=context, timeout=seconds) as client:
            response = await client.post(config["url"], json=body)
            response.raise_for_status()
            answer = response.json()["response"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        if webhook.get("failurePolicy", "Fail") == "Ignore":
            return []
        raise ApiError(
            500, "InternalError", f'Internal error occurred: failed calling webhook "{name}": {exc}'
        ) from None
    if answer.get("uid") != request_uid:
        raise ApiError(500, "InternalError", f'webhook "{name}" answered another request')
    if not answer.get("allowed"):
        status = answer.get("status") or {}
        message = f'admission webhook "{name}" denied the request: {status.get("message", "")}'
        raise ApiError(int(status.get("code") or 400), status.get("reason") or "BadRequest", message)
    return list(answer.get("warnings") or [])
