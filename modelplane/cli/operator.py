"""`modelplane operator`: reconciles serving.kserve.io resources on a Kubernetes cluster into
Deployments, Services, autoscalers and routes (or Knative Services), writes their status, and serves
the validating admission webhook. Run as two or more replicas: the holder of a Lease reconciles.

It talks to the cluster of $KUBECONFIG (or --kubeconfig), or, in a pod, to its own cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import uuid
from pathlib import Path

from modelplane.cli.kube_flags import add_kube_flags, kube_settings
from modelplane.cli.main import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="reconcile KServe resources on a Kubernetes cluster",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="the cluster's kubeconfig (default: $KUBECONFIG, or in-cluster)"
    )
    add_kube_flags(parser, from_environment=True)
    parser.add_argument(
        "--identity",
        default=os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}",
        help="this replica's name in the Lease (default: $POD_NAME)",
    )
    parser.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", "modelplane-system"),
        help="namespace of the Lease that elects the leader (default: $POD_NAMESPACE, else modelplane-system)",
    )
    parser.add_argument(
        "--lease-name", default="modelplane-operator", help="the Lease's name (default: modelplane-operator)"
    )
    parser.add_argument(
        "--lease-duration", type=float, default=15.0, help="seconds before another replica may take over"
    )
    parser.add_argument(
        "--renew-deadline", type=float, default=10.0, help="seconds the leader may fail to renew"
    )
    parser.add_argument("--retry-period", type=float, default=2.0, help="seconds between Lease attempts")
    parser.add_argument(
        "--webhook-port", type=int, default=9443, help="the admission webhook's port (0: any free one)"
    )
    parser.add_argument("--no-webhook", action="store_true", help="serve no admission webhook")
    parser.add_argument(
        "--webhook-host", default="0.0.0.0", help="address the admission webhook binds (default: 0.0.0.0)"
    )
    parser.add_argument(
        "--cert-dir",
        type=Path,
        default=Path("/tmp/k8s-webhook-server/serving-certs"),
        help="the webhook's tls.crt and tls.key",
    )
    parser.add_argument("--workers", type=int, default=4, help="resources reconciled at once")
    parser.add_argument(
        "--resync", type=float, default=300.0, help="seconds between reconciles of every resource"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import lightkube  # noqa: F401
    except ImportError:
        raise CommandError(
            'the operator needs its Kubernetes client: pip install "modelplane[kube]"'
        ) from None
    from modelplane.kube.operator.leader import LeaseSettings
    from modelplane.kube.operator.runner import OperatorSettings, WebhookSettings, run_operator

    if args.lease_duration <= args.renew_deadline or args.renew_deadline <= args.retry_period:
        raise CommandError("--lease-duration must exceed --renew-deadline, which must exceed --retry-period")
    if not args.no_webhook:
        missing = [p for p in (args.cert_dir / "tls.crt", args.cert_dir / "tls.key") if not p.is_file()]
        if missing:
            raise CommandError(
                f"the webhook's certificate is missing: {', '.join(map(str, missing))} (or --no-webhook)"
            )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpx2"):  # a line per request
        logging.getLogger(chatty).setLevel(logging.WARNING)
    settings = OperatorSettings(
        kube=kube_settings(args),
        lease=LeaseSettings(
            args.lease_name, args.lease_namespace, args.lease_duration, args.renew_deadline, args.retry_period
        ),
        identity=args.identity,
        webhook=WebhookSettings(
            args.webhook_host, None if args.no_webhook else args.webhook_port, args.cert_dir
        ),
        kubeconfig=args.kubeconfig,
        workers=args.workers,
        resync=args.resync,
    )
    return asyncio.run(run_operator(settings))
