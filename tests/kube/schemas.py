"""Checking objects as a cluster would: core kinds against the Kubernetes API's own schemas
(`kubernetes-validate`, strict: an unknown field is an error), custom resources against their CRDs'
`openAPIV3Schema` (made strict the same way: fields a CRD does not declare are refused unless it keeps
unknown fields there), Knative Services as Knative's webhook checks them, and names as the API server
checks them."""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from modelplane.api.quantity import parse_quantity

from .knative_webhook import knative_problems

REPO = Path(__file__).resolve().parents[2]
CRD_FOLDERS = (REPO / "deploy" / "crds", Path(__file__).parent / "cluster-crds")
KUBERNETES_VERSION = kubernetes_validate.latest_version()
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def problems(obj: dict) -> list[str]:
    """Why the API server would refuse `obj` (empty when it would take it)."""
    found = _schema_problems(obj)
    found += _name_problems(obj)
    if (obj.get("apiVersion"), obj.get("kind")) == ("serving.knative.dev/v1", "Service"):
        found += [f"Knative's webhook: {p}" for p in knative_problems(obj)]
    return [f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}: {p}" for p in found]


def _schema_problems(obj: dict) -> list[str]:
    group_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    validator = _custom_resource_validator(group_version, kind)
    if validator is None:
        return [f"{e.message} (at {list(e.absolute_path)})" for e in _core_errors(obj)]
    found = [f"{e.message} (at {list(e.absolute_path)})" for e in validator.iter_errors(obj)]
    # A custom resource's metadata is Kubernetes' ObjectMeta, whatever its CRD says.
    meta = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata")}
    found += [f"metadata: {e.message}" for e in _core_errors(meta)]
    return found


def _core_errors(obj: dict) -> list[jsonschema.ValidationError]:
    """What `kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)` finds, with the
    validator built once per kind (the library reads and parses its schema files on every call)."""
    validator = _core_validator(obj["apiVersion"], obj["kind"])
    error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
    return [] if error is None else [error]


@cache
def _core_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    schema = schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", KUBERNETES_VERSION)
    definitions = schema_contents(f"{folder}/_definitions.json", KUBERNETES_VERSION)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _custom_resource_validator(group_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    schema = custom_resource_schemas().get((group_version, kind))
    return None if schema is None else jsonschema.Draft202012Validator(schema)


@cache
def custom_resource_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the strict JSON schema of every served version of every CRD we know."""
    schemas = {}
    for folder in CRD_FOLDERS:
        for path in sorted(folder.glob("*.yaml")):
            for crd in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
                if crd:
                    schemas.update(crd_schemas(crd))
    return schemas


def crd_schemas(crd: dict) -> dict[tuple[str, str], dict]:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    return {
        (f"{group}/{version['name']}", kind): strict(version["schema"]["openAPIV3Schema"])
        for version in crd["spec"]["versions"]
        if version.get("served", True)
    }


def strict(schema: dict) -> dict:
    """A CRD schema that refuses what the API server would prune (or refuse with strict validation)."""
    schema = copy.deepcopy(schema)

    def visit(node: object) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    # apiVersion, kind and metadata are the API server's, whatever the schema lists.
    schema.setdefault("properties", {}).update(
        {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
    )
    return schema


def _name_problems(obj: dict) -> list[str]:
    found = []
    name = (obj.get("metadata") or {}).get("name", "")
    pattern = _DNS_1035 if obj.get("kind") == "Service" and obj.get("apiVersion") == "v1" else _DNS_SUBDOMAIN
    if not pattern.match(name) or len(name) > (63 if pattern is _DNS_1035 else 253):
        found.append(f"object name {name!r} is not valid")
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    for labels in ((obj.get("metadata") or {}).get("labels"), template.get("labels")):
        for key, value in (labels or {}).items():
            if len(str(value)) > 63:
                found.append(f"label {key}: {value!r} is longer than 63 characters")
    for container in _containers(obj):
        resources = container.get("resources") or {}
        for resource, limit in (resources.get("limits") or {}).items():
            request = (resources.get("requests") or {}).get(resource)
            if request is not None and parse_quantity(request) > parse_quantity(limit):
                found.append(f"container {container.get('name')}: requests.{resource} over its limit")
        if not _DNS_LABEL.match(str(container.get("name", ""))):
            found.append(f"container name {container.get('name')!r} is not a DNS label")
        for port in container.get("ports") or []:
            port_name = port.get("name")
            if port_name and (
                len(port_name) > 15 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", port_name)
            ):
                found.append(f"container port name {port_name!r} is not an IANA service name")
    for port in ((obj.get("spec") or {}).get("ports") or []) if obj.get("kind") == "Service" else []:
        if port.get("name") and not _DNS_LABEL.match(port["name"]):
            found.append(f"service port name {port['name']!r} is not a DNS label")
    return found


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec") or {}
    pod = ((spec.get("template") or {}).get("spec")) or (spec if "containers" in spec else {})
    containers = [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]
    if obj.get("apiVersion") == "serving.knative.dev/v1":
        containers = [c for c in containers if "name" in c]  # Knative names an unnamed container
    return containers
