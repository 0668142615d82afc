"""The operator's process: the admission webhook (on every replica), leader election, and, while
this replica leads, the controller.

A replica that loses the Lease stops reconciling and exits with status 1, so that its pod restarts
and stands for election again (client-go's controllers do the same); on SIGTERM it stops cleanly and
releases the Lease, so that another replica takes over at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig

from modelplane.kube.operator.cluster import FIELD_MANAGER, Cluster
from modelplane.kube.operator.context import Context
from modelplane.kube.operator.controller import Controller
from modelplane.kube.operator.leader import LeaderElector, LeaseSettings
from modelplane.kube.operator.webhook import AdmissionWebhook
from modelplane.kube.settings import KubeSettings

logger = logging.getLogger("modelplane.operator")


@dataclass(frozen=True)
class WebhookSettings:
    """Where the webhook listens (port None: not served) and its certificate (`tls.crt`, `tls.key`
    in `cert_dir`, as cert-manager writes a TLS Secret)."""

    host: str = "0.0.0.0"
    port: int | None = 9443
    cert_dir: Path = Path("/tmp/k8s-webhook-server/serving-certs")


@dataclass(frozen=True)
class OperatorSettings:
    kube: KubeSettings
    lease: LeaseSettings
    identity: str
    webhook: WebhookSettings
    kubeconfig: Path | None = None
    workers: int = 4
    resync: float = 300.0


async def run_operator(settings: OperatorSettings) -> int:
    config = KubeConfig.from_file(settings.kubeconfig) if settings.kubeconfig else None
    client = AsyncClient(config=config, field_manager=FIELD_MANAGER)
    cluster = Cluster(client)
    ctx = Context(cluster, settings.kube)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    webhook = await _start_webhook(AdmissionWebhook(cluster, ctx.admission), settings.webhook)
    elector = LeaderElector(cluster, settings.identity, settings.lease)
    code = 0
    try:
        if await _first(elector.acquire(), stop.wait()) == "stopped":
            await elector.release()  # the Lease may have been won just as the stop came
            return 0
        controller = Controller(ctx, workers=settings.workers, resync=settings.resync)
        controller.start()
        lost = await _first(elector.keep(), stop.wait()) != "stopped"
        await controller.close()
        if lost:
            code = 1
        else:
            await elector.release()
    finally:
        if webhook is not None:
            webhook.should_exit = True
            await asyncio.sleep(0)
        await client.close()
    return code


async def _first(work, stopped) -> str:
    """Runs both; returns "stopped" if `stopped` ended first, else "done" (the other is cancelled)."""
    work_task, stop_task = asyncio.ensure_future(work), asyncio.ensure_future(stopped)
    done, pending = await asyncio.wait({work_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if work_task in done:
        work_task.result()
        return "done"
    return "stopped"


async def _start_webhook(app: AdmissionWebhook, settings: WebhookSettings) -> uvicorn.Server | None:
    if settings.port is None:
        return None
    cert, key = settings.cert_dir / "tls.crt", settings.cert_dir / "tls.key"
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    config = uvicorn.Config(
        app,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        lifespan="off",
        ssl_version=ssl.PROTOCOL_TLS_SERVER,
    )
    server = uvicorn.Server(config)
    asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    host, port = sock.getsockname()[:2]
    logger.info("admission webhook listening on https://%s:%s/validate", host, port)
    print(f"webhook listening on https://{host}:{port}", flush=True)
    return server
