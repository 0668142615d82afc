"""Watches, each a lightkube watch on one kind (across namespaces) whose changes become keys in the
work queue. lightkube resumes a watch from the last resourceVersion it saw when the stream ends, and
starts over (the current objects first) when that version is too old; a kind that is not installed
(Knative, the Gateway API, KEDA) is looked for again now and then."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from lightkube import AsyncClient
from lightkube.core.resource import NamespacedResource
from lightkube.types import OnErrorAction, OnErrorResult

logger = logging.getLogger("modelplane.operator")

NOT_INSTALLED_RETRY = 60.0
ALL_NAMESPACES = "*"


@dataclass(frozen=True)
class Watch:
    resource: type
    on_event: Callable[[str, dict], None]  # (ADDED | MODIFIED | DELETED, the object)
    labels: dict | None = None


def _status_code(error: Exception) -> int | None:
    status = getattr(error, "status", None)
    if status is not None and getattr(status, "code", None):
        return status.code
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _on_error(resource: type) -> Callable[[Exception, int], OnErrorResult]:
    name = resource._api_info.plural

    def decide(error: Exception, count: int) -> OnErrorResult:
        if _status_code(error) == 404:
            if count == 1:
                logger.info(
                    "%s are not served by this cluster: looking again every %ss", name, NOT_INSTALLED_RETRY
                )
            return OnErrorResult(OnErrorAction.RETRY, NOT_INSTALLED_RETRY)
        delay = min(30.0, 0.5 * 2 ** min(count, 6))
        logger.warning("watching %s failed (again in %.1fs): %s", name, delay, error)
        return OnErrorResult(OnErrorAction.RETRY, delay)

    return decide


async def run_watch(client: AsyncClient, watch: Watch) -> None:
    """Runs until cancelled."""
    namespace = ALL_NAMESPACES if issubclass(watch.resource, NamespacedResource) else None
    while True:
        try:
            async for event_type, obj in client.watch(
                watch.resource, namespace=namespace, labels=watch.labels, on_error=_on_error(watch.resource)
            ):
                watch.on_event(event_type, dict(obj))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a watch must outlive any one bad stream
            logger.exception("the watch of %s stopped; starting it again", watch.resource._api_info.plural)
            await asyncio.sleep(1.0)
