"""ModelMesh Serving's single endpoint: one host per namespace for all of its ModelMesh models.

ModelMesh Serving answers every model of a namespace at its `modelmesh-serving` Service and finds the
model by the name the request gives: the model in a V1 or V2 REST path (`/v2/models/<name>/infer`),
or the name in a gRPC call's message (`model_name` of ModelInferRequest, `name` of
ModelMetadataRequest: field 1 of each); else by the `mm-vmodel-id` header (gRPC metadata) or the
`mm-model-id` header (a model version's id, `<name>__isvc-<digest>`). A ModelReady call is routed by
its header first, as ModelMesh reads only the header there, else by its message's `name`. On `modelplane up` the endpoint is the host `modelmesh-serving.<namespace>.<domain>` on
the gateway's port, REST and gRPC; a request there goes to the route of the model's service.

ModelMesh Serving's users reach that Service through `kubectl port-forward`, at `localhost:8033` or
`localhost:8008`: a request to the gateway's port at an address (`localhost`, an IP, no Host at all)
that no route serves is taken as one to the endpoint of the namespace whose ModelMesh model it names
(`address_endpoint`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

ENDPOINT_NAME = "modelmesh-serving"
MODEL_ID_HEADER = b"mm-vmodel-id"
VERSION_ID_HEADER = b"mm-model-id"  # a concrete model version
VERSION_SEPARATOR = "__isvc-"  # in a version's id, `<name>__isvc-<digest>`
# The calls whose message names the model before any header does, as ModelMesh Serving configures
# ModelMesh (their `idExtractionPath`); the others are routed by the header first.
MESSAGE_NAMES_MODEL = frozenset(
    (b"/inference.GRPCInferenceService/ModelInfer", b"/inference.GRPCInferenceService/ModelMetadata")
)

_MODEL_PATH = re.compile(rb"^/v[12]/models/([^/:]+)")
_GRPC_PREFIX = 5  # a gRPC message's compressed flag and length
_NAME_TAG = 0x0A  # field 1, length-delimited


def endpoint_host(namespace: str, domain: str) -> str:
    """`modelmesh-serving.<namespace>.<domain>`: where a namespace's ModelMesh models all answer."""
    return f"{ENDPOINT_NAME}.{namespace}.{domain}"


def is_address(host: str) -> bool:
    """Whether a Host (lower case, without port) is an address rather than a service's name: what a
    client of a port-forwarded Service sends (`localhost`, `127.0.0.1`, `[::1]`, or none)."""
    if host in ("", "localhost"):
        return True
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True


def address_endpoint(
    endpoints: Mapping[str, Mapping[str, str]],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every namespace's endpoint merged into one, for requests at an address: each model name to its
    service's host; and the names that models of several namespaces share, to those namespaces'
    endpoint hosts (such a name has to be asked for at one of them)."""
    merged: dict[str, str] = {}
    shared: dict[str, list[str]] = {}
    seen_at: dict[str, str] = {}
    for host in sorted(endpoints):
        for name, target in endpoints[host].items():
            if name in seen_at and merged.get(name) != target:
                shared.setdefault(name, [seen_at[name]]).append(host)
                merged.pop(name, None)
            elif name not in shared:
                merged[name], seen_at[name] = target, host
    return merged, shared


def model_header(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The model the request's `mm-vmodel-id` header names, else its `mm-model-id` header, if any."""
    version = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == MODEL_ID_HEADER:
            return value.strip()
        if lowered == VERSION_ID_HEADER:
            version = value.strip()
    return version


def model_in_path(path: bytes) -> bytes | None:
    """The model a V1 or V2 REST path names (`/v1/models/<name>:predict`, `/v2/models/<name>/infer`)."""
    match = _MODEL_PATH.match(path)
    return match.group(1) if match else None


class NoModelName(ValueError):
    """The call's first message does not name a model where V2's requests name it."""


def model_in_message(received: bytes) -> bytes | None:
    """The model named by the first gRPC message of a call, from the bytes received so far: None
    while more are needed; NoModelName if the message names none (or is compressed)."""
    if len(received) < _GRPC_PREFIX:
        return None
    if received[0] != 0:
        raise NoModelName("the message is compressed")
    length = int.from_bytes(received[1:_GRPC_PREFIX], "big")
    body = received[_GRPC_PREFIX : _GRPC_PREFIX + length]
    complete = len(body) == length
    if not body:
        if complete:
            raise NoModelName("the message is empty")
        return None
    if body[0] != _NAME_TAG:
        raise NoModelName("the message does not start with a model name")
    size, index, shift = 0, 1, 0
    while True:
        if index >= len(body):
            if complete:
                raise NoModelName("the message is cut short")
            return None
        byte = body[index]
        size |= (byte & 0x7F) << shift
        index += 1
        shift += 7
        if not byte & 0x80:
            break
        if shift > 28:
            raise NoModelName("the model name's length is not valid")
    if len(body) < index + size:
        if complete:
            raise NoModelName("the message is cut short")
        return None
    return body[index : index + size]
