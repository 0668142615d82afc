"""The flags `modelplane render` and `modelplane operator` share: how resources become Kubernetes objects
(the default deployment mode, the image, how traffic comes in), and the `KubeSettings` they make."""

from __future__ import annotations

import argparse
import os

from modelplane.api.constants import KNATIVE, STANDARD
from modelplane.kube.settings import DEFAULT_IMAGE, KubeSettings

MODES = {"standard": STANDARD, "knative": KNATIVE}


def add_kube_flags(parser: argparse.ArgumentParser, *, from_environment: bool) -> None:
    """`from_environment`: the mode's and the image's defaults come from MODELPLANE_DEFAULT_MODE and
    MODELPLANE_IMAGE, as the operator's Deployment sets them."""
    mode_default, image_default = "standard", DEFAULT_IMAGE
    image_help = f"modelplane's image, for the pods it makes (default: {DEFAULT_IMAGE})"
    if from_environment:
        mode_default = os.environ.get("MODELPLANE_DEFAULT_MODE", mode_default)
        image_default = os.environ.get("MODELPLANE_IMAGE", image_default)
        image_help = (
            f"modelplane's image, for the pods it makes (default: $MODELPLANE_IMAGE, else {DEFAULT_IMAGE})"
        )
    parser.add_argument(
        "--mode",
        choices=sorted(MODES),
        default=mode_default,
        help="the deployment mode of resources without the serving.kserve.io/deploymentMode annotation "
        f"(default: {'$MODELPLANE_DEFAULT_MODE, else ' if from_environment else ''}standard)",
    )
    _add_route_flags(parser)
    parser.add_argument("--image", default=image_default, help=image_help)
    parser.add_argument(
        "--full-image",
        help="its variant with PyTorch, TensorFlow and PaddlePaddle (default: the --image repository + -full, same tag)",
    )
    parser.add_argument(
        "--gateway",
        default=KubeSettings.gateway,
        help=f"the Gateway (NAMESPACE/NAME) HTTPRoutes attach to (default: {KubeSettings.gateway})",
    )
    parser.add_argument("--ingress-class", help="the Ingress's class (default: the cluster's default class)")
    parser.add_argument(
        "--domain",
        default=KubeSettings.ingress_domain,
        help=f"the domain of external hosts, NAME-NAMESPACE.DOMAIN (default: {KubeSettings.ingress_domain})",
    )


def kube_settings(args: argparse.Namespace) -> KubeSettings:
    return KubeSettings(
        default_mode=MODES[args.mode],
        image=args.image,
        full_image=args.full_image,
        gateway_api=args.gateway_api,
        gateway=args.gateway,
        ingress_class=args.ingress_class,
        disable_http_route_timeout=args.disable_http_route_timeout,
        ingress_domain=args.domain,
    )


def _add_route_flags(parser: argparse.ArgumentParser) -> None:
    """How traffic comes in: Gateway API HTTPRoutes (the default) or an Ingress."""
    routes = parser.add_mutually_exclusive_group()
    routes.add_argument(
        "--gateway-api",
        dest="gateway_api",
        action="store_true",
        default=True,
        help="route traffic in with Gateway API HTTPRoutes (the default)",
    )
    routes.add_argument(
        "--ingress", dest="gateway_api", action="store_false", help="route traffic in with an Ingress"
    )
    parser.add_argument(
        "--disable-http-route-timeout",
        action="store_true",
        help="HTTPRoute rules without timeouts, for Gateways that lack them (default: each rule times out "
        "after its component's timeout, else 60 seconds)",
    )
