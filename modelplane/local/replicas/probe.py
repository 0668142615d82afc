"""Is a replica ready? Its HTTP readiness endpoint says so, and `modelplane serve` also says why not.

The default probe is `GET /v2/health/ready` on the replica's HTTP port: 200 is ready. A server that
answers 404 there does not speak the V2 protocol; for it, answering at all is being ready (KServe's
default probe is a TCP connect). A `modelplane serve` replica that answers 503 is asked for its
repository index, whose `reason` tells a model that failed to load from one still loading.

Once ready, a program that is not one of modelplane's own servers is mostly probed with a TCP connect,
Knative's default readiness probe: KServe's SDK (uvicorn) writes three lines to its log for every HTTP
request, the probe's included, and none for a connection that sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import httpx

from modelplane.telemetry import trace_context

V2_READY_PATH = "/v2/health/ready"
CONNECT_TIMEOUT = 2.0  # seconds; the same as the HTTP probe's


@dataclass(frozen=True)
class ProbeResult:
    ready: bool
    failure: str | None = None  # why the model failed to load, when the replica knows


async def probe(
    client: httpx.AsyncClient, port: int, path: str | None, *, repository_index: bool
) -> ProbeResult:
    base = f"http://127.0.0.1:{port}"
    try:
        response = await client.get(base + (path or V2_READY_PATH))
    except httpx.HTTPError:
        return ProbeResult(False)
    if response.status_code < 400 or (response.status_code == 404 and path is None):
        return ProbeResult(True)
    if not repository_index:
        return ProbeResult(False)
    return ProbeResult(False, await _load_failure(client, base))


async def _load_failure(client: httpx.AsyncClient, base: str) -> str | None:
    try:
        response = await client.post(
            base + "/v2/repository/index",
            content=b"{}",
            # a POST, which a traced model server would trace: as often as the replica is probed
            headers={"traceparent": trace_context.unsampled_traceparent()},
        )
        models = response.json() if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return None
    reasons = [
        f"{m.get('name')}: {m['reason']}" if len(models) > 1 else str(m["reason"])
        for m in models
        if isinstance(m, dict) and m.get("reason") and m.get("state") != "READY"
    ]
    return "; ".join(reasons) or None


async def accepts_connections(port: int) -> bool:
    """Whether the replica's port at 127.0.0.1 takes a TCP connection (which is closed at once)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
