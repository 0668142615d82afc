"""`modelplane render -f FILE`: the Kubernetes objects the operator creates for resources, as YAML that
`kubectl apply -f -` takes (for GitOps, and for review).

Each resource is defaulted and checked as `modelplane apply` does (the same messages), then rendered
by `modelplane.kube` with the settings given here (the operator's are its own configuration).
"""

from __future__ import annotations

import argparse
import sys

import yaml

from modelplane.api import AdmissionConfig, unknown_fields
from modelplane.api.constants import KNATIVE, STANDARD
from modelplane.api.errors import ValidationError
from modelplane.api.kinds import EVENT, kind_of
from modelplane.api.loader import Document
from modelplane.cli.documents import DEFAULT_NAMESPACE, placed, read_documents
from modelplane.cli.main import CommandError
from modelplane.control.admission import admit_with_platform_checks, refusal_message
from modelplane.kube.notes import resource_ref
from modelplane.kube.render import RenderError, render
from modelplane.kube.settings import DEFAULT_IMAGE, KubeSettings
from modelplane.local.api import meta as api_meta
from modelplane.local.api.errors import Invalid, invalid_details

MODES = {"standard": STANDARD, "knative": KNATIVE}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="print the Kubernetes objects the operator creates for resources",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "-f", "--filename", action="append", required=True, help="a file, a folder, or - for stdin"
    )
    parser.add_argument(
        "-R", "--recursive", action="store_true", help="also read the folders inside a folder"
    )
    parser.add_argument("-n", "--namespace", help=f"namespace (default: {DEFAULT_NAMESPACE})")
    parser.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="standard",
        help="the deployment mode of resources without the serving.kserve.io/deploymentMode annotation "
        "(default: standard)",
    )
    add_route_flags(parser)
    parser.add_argument(
        "--image", default=DEFAULT_IMAGE, help=f"modelplane's image (default: {DEFAULT_IMAGE})"
    )
    parser.add_argument(
        "--full-image",
        help="its variant with PyTorch and TensorFlow (default: the --image repository + -full, same tag)",
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = KubeSettings(
        default_mode=MODES[args.mode],
        image=args.image,
        full_image=args.full_image,
        gateway_api=args.gateway_api,
        gateway=args.gateway,
        ingress_class=args.ingress_class,
        disable_http_route_timeout=args.disable_http_route_timeout,
        ingress_domain=args.domain,
    )
    documents = read_documents(args.filename, args.recursive)
    if not documents:
        raise CommandError("no objects passed to render")
    admitted = _admitted(documents, args.namespace, settings)
    try:
        rendering = render(admitted, settings)
    except RenderError as error:
        document = _document_of(error.resource, documents, admitted)
        raise CommandError(
            f"{document.source}:{document.line_of(error.path)}: {error.resource.split('/')[0]} "
            f'"{error.resource.split("/")[-1]}" cannot run: {error}'
        ) from None
    for note in rendering.notes:
        document = _document_of(note.resource, documents, admitted)
        print(
            f"Warning: {document.source}:{document.line_of(note.path)}: {note}",
            file=sys.stderr,
        )
    sys.stdout.write(yaml.safe_dump_all(rendering.objects, sort_keys=False, default_flow_style=False))
    return 0


def _admitted(documents: list[Document], namespace: str | None, settings: KubeSettings) -> list[dict]:
    """Each resource defaulted and checked as `modelplane apply` would; refused as it would refuse."""
    config = AdmissionConfig(default_deployment_mode=settings.default_mode)
    admitted: list[dict] = []
    for document in documents:
        resource = placed(document, namespace, refused=(EVENT,))
        _check_identity(resource, document)
        for path in unknown_fields(resource):
            print(
                f'Warning: {document.source}:{document.line_of(path)}: unknown field "{path}"',
                file=sys.stderr,
            )
        same_scope = [
            other
            for other in admitted
            if kind_of(other) == kind_of(resource)
            and (other["metadata"].get("namespace") == resource["metadata"].get("namespace"))
        ]
        try:
            admitted.append(admit_with_platform_checks(resource, existing=same_scope, config=config))
        except ValidationError as error:
            line = document.line_of(error.errors[0].path) if error.errors[0].path else document.line
            raise CommandError(
                f"{document.source}:{line}: {refusal_message(resource, error)} (nothing was rendered)"
            ) from None
    return admitted


def _check_identity(resource: dict, document: Document) -> None:
    """The name and namespace checks the API server makes before any admission webhook runs, placed
    at the field's line as apply places them."""
    kind = kind_of(resource)
    metadata = resource["metadata"]
    what = f'{kind.group_kind} "{metadata.get("name") or ""}" is invalid'
    details = invalid_details(kind, str(metadata.get("name") or ""))
    try:
        api_meta.check_name(metadata.get("name"), what, details)
        if kind.namespaced:
            api_meta.check_namespace(metadata.get("namespace"), what, details)
    except Invalid as error:
        line = document.line_of(error.details["causes"][0]["field"])
        raise CommandError(f"{document.source}:{line}: {error} (nothing was rendered)") from None


def _document_of(reference: str, documents: list[Document], admitted: list[dict]) -> Document:
    for document, resource in zip(documents, admitted, strict=True):
        if resource_ref(resource) == reference:
            return document
    return documents[0]


def add_route_flags(parser: argparse.ArgumentParser) -> None:
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
