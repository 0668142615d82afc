"""A replica's environment, made from its container's `envFrom` and `env` as the kubelet makes a
container's.

- `envFrom`, first: every key of a ConfigMap (`configMapRef`) or a Secret (`secretRef`) of the
  service's namespace becomes a variable, its name after the source's `prefix`.
- `env`, in order: a `value`, with its `$(NAME)` references expanded from the variables defined
  before it (`$$` is a `$`; a reference to no variable stays as it is); or a `valueFrom`: a key of a
  ConfigMap (`configMapKeyRef`) or a Secret (`secretKeyRef`), a field of the pod (`fieldRef`, the
  downward API), or a resource of the container (`resourceFieldRef`).
- The command and its args then get their `$(NAME)` references expanded from the whole environment
  (`expand`, in replicas/command.py).

A Secret's value that is not UTF-8 text (a DER key, a keystore) becomes a variable of the bytes stored,
as the kubelet passes them: the lookup answers it with surrogate escapes (`os.fsdecode`), which Python
encodes back to those bytes for the process. A value with a NUL byte cannot be in an environment at all:
the replica does not start (Kubernetes' container runtime refuses such a container too).

The ConfigMaps and Secrets are read when the replica starts: one changed later reaches a replica
when it next starts, as in Kubernetes. A source that is not there, and not `optional`, keeps the
replica from starting (`EnvError`, Kubernetes' `CreateContainerConfigError`), and it is tried again
with back-off, so applying the missing source lets it start.

A replica stands for a pod on this machine: its name is the replica's (`<revision>-<index>`), its
addresses are the loopback's, its node is this machine, and a resource without a limit is this
machine's capacity, as a node's allocatable is a container's in Kubernetes.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from modelplane.api.errors import FieldError
from modelplane.api.quantity import parse_quantity

CONFIG_MAP, SECRET = "ConfigMap", "Secret"
# A ConfigMap's or Secret's values by key (a Secret's bytes that are not UTF-8 as surrogate escapes), or
# None when the object is not there.
Lookup = Callable[[str, str, str], Mapping[str, str] | None]  # (kind, namespace, name)

LOOPBACK = "127.0.0.1"
FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
_LABEL_PATH = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")
RESOURCES = ("cpu", "memory", "ephemeral-storage")
_CPU_DIVISORS = ("1m", "1")
_MEMORY_DIVISORS = tuple(
    f"1{suffix}" for suffix in ("", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
)


class EnvError(Exception):
    """The environment cannot be made: a ConfigMap, a Secret or a key of one is missing, or a value
    holds a NUL byte."""

    reason = "CreateContainerConfigError"


@dataclass(frozen=True)
class Pod:
    """What the downward API tells of the pod a replica stands for."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"


def uses_env_sources(container: Mapping) -> bool:
    """Whether a container's environment needs more than its literal values: an `envFrom`, a
    `valueFrom`, or a `$(NAME)` reference."""
    if container.get("envFrom"):
        return True
    return any(
        isinstance(item, Mapping) and ("valueFrom" in item or "$(" in str(item.get("value", "")))
        for item in container.get("env") or []
    )


def container_env(env_from: list, env: list, pod: Pod, resources: Mapping, lookup: Lookup) -> dict[str, str]:
    """The variables `envFrom` and `env` define, in Kubernetes' order; raises EnvError."""
    values: dict[str, str] = {}
    for source in env_from:
        values.update(_from_source(source, pod.namespace, lookup))
    for item in env:
        name = str(item["name"])
        if "valueFrom" in item:
            found = _value_from(item["valueFrom"], pod, resources, lookup)
            if found is not None:
                values[name] = found
        else:
            values[name] = expand(str(item.get("value", "")), values)
    _refuse_nul_bytes(values)
    return values


def _refuse_nul_bytes(values: Mapping[str, str]) -> None:
    for name, value in values.items():
        if "\x00" in value:
            raise EnvError(f'invalid environment variable "{name}": contains nul byte (\\x00)')


def secret_values(env_from: list, env: list, namespace: str, lookup: Lookup) -> set[str]:
    """The values the container takes from Secrets: what the platform's own lines about the replica
    (its command line, say) must not show."""
    found: set[str] = set()
    for source in env_from:
        if "secretRef" in source:
            found.update((lookup(SECRET, namespace, source["secretRef"]["name"]) or {}).values())
    for item in env:
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if ref is not None:
            found.add((lookup(SECRET, namespace, ref["name"]) or {}).get(ref["key"], ""))
    return {value for value in found if value}


def redacted(text: str, secrets: set[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, "<redacted>")
    return text


def expand(text: str, variables: Mapping[str, str]) -> str:
    """`$(NAME)` replaced by the variable's value where it is defined; `$$` is a `$`."""
    if "$" not in text:
        return text
    out: list[str] = []
    position, length = 0, len(text)
    while position < length:
        char = text[position]
        if char == "$" and position + 1 < length:
            following = text[position + 1]
            if following == "$":
                out.append("$")
                position += 2
                continue
            if following == "(":
                close = text.find(")", position + 2)
                if close != -1:
                    name = text[position + 2 : close]
                    out.append(variables[name] if name in variables else text[position : close + 1])
                    position = close + 1
                    continue
        out.append(char)
        position += 1
    return "".join(out)


def _from_source(source: Mapping, namespace: str, lookup: Lookup) -> dict[str, str]:
    kind, ref = (
        (CONFIG_MAP, source["configMapRef"]) if "configMapRef" in source else (SECRET, source["secretRef"])
    )
    values = lookup(kind, namespace, ref["name"])
    if values is None:
        if ref.get("optional"):
            return {}
        raise EnvError(f'{kind.lower()} "{ref["name"]}" not found')
    prefix = str(source.get("prefix") or "")
    return {prefix + key: value for key, value in values.items() if "=" not in prefix + key}


def _value_from(source: Mapping, pod: Pod, resources: Mapping, lookup: Lookup) -> str | None:
    """A `valueFrom`'s value; None for an optional key that is not there (the variable is not set)."""
    for field_name, kind in (("configMapKeyRef", CONFIG_MAP), ("secretKeyRef", SECRET)):
        if field_name in source:
            return _key_value(kind, source[field_name], pod.namespace, lookup)
    if "fieldRef" in source:
        return field_value(source["fieldRef"]["fieldPath"], pod)
    return resource_value(source["resourceFieldRef"], resources)


def _key_value(kind: str, ref: Mapping, namespace: str, lookup: Lookup) -> str | None:
    values = lookup(kind, namespace, ref["name"])
    if values is None:
        if ref.get("optional"):
            return None
        raise EnvError(f'{kind.lower()} "{ref["name"]}" not found')
    if ref["key"] not in values:
        if ref.get("optional"):
            return None
        raise EnvError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return values[ref["key"]]


def field_value(path: str, pod: Pod) -> str:
    """A `fieldRef`'s value for the pod (the downward API)."""
    labelled = _LABEL_PATH.match(path)
    if labelled is not None:
        which, key = labelled.groups()
        return str((pod.labels if which == "labels" else pod.annotations).get(key, ""))
    return {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "metadata.uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"modelplane:{pod.namespace}/{pod.name}")),
        "spec.nodeName": socket.gethostname(),
        "spec.serviceAccountName": pod.service_account,
    }.get(path, LOOPBACK)  # the status addresses


def resource_value(ref: Mapping, resources: Mapping) -> str:
    """A `resourceFieldRef`'s value for the container's resources, in its divisor's units."""
    which, _, resource = ref["resource"].partition(".")
    limit = parse_quantity((resources.get("limits") or {}).get(resource))
    if which == "limits":
        amount = limit if limit is not None else _capacity(resource)
    else:
        request = parse_quantity((resources.get("requests") or {}).get(resource))
        amount = request if request is not None else (limit if limit is not None else Decimal(0))
    divisor = parse_quantity(ref.get("divisor") or "1") or Decimal(1)
    return str(math.ceil(amount / divisor))


def _capacity(resource: str) -> Decimal:
    """This machine's, as a node's allocatable stands in for a container's missing limit."""
    if resource == "cpu":
        return Decimal(os.cpu_count() or 1)
    if resource == "memory":
        return Decimal(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return Decimal(shutil.disk_usage("/").total)


# ---- what the API server refuses -----------------------------------------------------------------


def env_errors(container: Mapping, path: str) -> Iterator[FieldError]:
    """The API server's rules for a container's `env` and `envFrom` that the schema does not say:
    one source per `valueFrom` and not with a `value`, fields and resources the downward API has."""
    for index, item in enumerate(container.get("env") or []):
        if not isinstance(item, Mapping) or "valueFrom" not in item:
            continue
        here = f"{path}.env[{index}].valueFrom"
        source = item["valueFrom"] or {}
        if item.get("value"):
            yield FieldError(here, 'Invalid value: "": may not be specified when `value` is not empty')
        kinds = [
            name
            for name in ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef")
            if name in source
        ]
        if len(kinds) != 1:
            problem = (
                "must specify one of" if not kinds else "may not have more than one field specified at a time"
            )
            yield FieldError(
                here,
                f'Invalid value: "": {problem}: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
            )
            continue
        if "fieldRef" in source:
            yield from _field_ref_errors(source["fieldRef"], f"{here}.fieldRef")
        elif "resourceFieldRef" in source:
            yield from _resource_ref_errors(source["resourceFieldRef"], f"{here}.resourceFieldRef")
    for index, source in enumerate(container.get("envFrom") or []):
        if isinstance(source, Mapping) and ("configMapRef" in source) == ("secretRef" in source):
            yield FieldError(
                f"{path}.envFrom[{index}]",
                'Invalid value: "": must specify one of: `configMapRef` or `secretRef`',
            )


def _field_ref_errors(ref: Mapping, here: str) -> Iterator[FieldError]:
    path = str(ref.get("fieldPath", ""))
    if path in FIELD_PATHS or _LABEL_PATH.match(path):
        return
    supported = ", ".join(f'"{p}"' for p in ("metadata.annotations", "metadata.labels", *FIELD_PATHS))
    yield FieldError(f"{here}.fieldPath", f'Unsupported value: "{path}": supported values: {supported}')


def _resource_ref_errors(ref: Mapping, here: str) -> Iterator[FieldError]:
    which, _, resource = str(ref.get("resource", "")).partition(".")
    if which not in ("limits", "requests") or resource not in RESOURCES:
        supported = ", ".join(f'"{w}.{r}"' for w in ("limits", "requests") for r in RESOURCES)
        yield FieldError(
            f"{here}.resource",
            f'Unsupported value: "{ref.get("resource", "")}": supported values: {supported}',
        )
        return
    divisor = ref.get("divisor")
    if divisor is None:
        return
    allowed = _CPU_DIVISORS if resource == "cpu" else _MEMORY_DIVISORS
    if str(divisor) not in allowed:
        yield FieldError(
            f"{here}.divisor",
            f'Invalid value: "{divisor}": only divisor\'s values {", ".join(allowed)} are supported with the {resource} resource',
        )
