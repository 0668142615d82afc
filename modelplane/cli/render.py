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
from modelplane.api.errors import ValidationError
from modelplane.api.kinds import EVENT, kind_of
from modelplane.api.loader import Document
from modelplane.api.schema import drop_unknown_fields
from modelplane.cli.documents import DEFAULT_NAMESPACE, placed, read_documents
from modelplane.cli.kube_flags import add_kube_flags, kube_settings
from modelplane.cli.main import CommandError
from modelplane.control.admission import admit_with_platform_checks, refusal_message
from modelplane.kube.notes import resource_ref
from modelplane.kube.render import RenderError, render
from modelplane.kube.settings import KubeSettings
from modelplane.local.api import meta as api_meta
from modelplane.local.api.errors import Invalid, invalid_details


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
    add_kube_flags(parser, from_environment=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = kube_settings(args)
    documents = read_documents(args.filename, args.recursive, "render")
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
                f'Warning: {document.source}:{document.line_of(path)}: unknown field "{path}" (left out, '
                "as the API server prunes it)",
                file=sys.stderr,
            )
        if kind_of(resource) is not None:  # what the operator reads: rendered, it would reach a pod
            resource = drop_unknown_fields(resource, kind_of(resource))
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
