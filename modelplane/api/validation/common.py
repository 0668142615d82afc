"""Helpers the validation rules of several kinds share."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import paths
from ..constants import BLOCKED_ENV_VARS
from ..errors import FieldError

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
DNS1123_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{DNS1123_SUBDOMAIN_FMT}')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def dicts(value: object) -> list[dict]:
    """The mappings in a list (anything else counts as empty)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def metadata_errors(resource: dict, *, namespaced: bool, check_name: bool = True) -> Iterator[FieldError]:
    """The API server's own checks of a resource's name and namespace."""
    metadata = mapping(resource.get("metadata"))
    name = metadata.get("name", "")
    if check_name and (len(name) > 253 or not DNS1123_SUBDOMAIN.match(name)):
        yield FieldError("metadata.name", f'Invalid value: "{name}": {SUBDOMAIN_MESSAGE}')
    namespace = metadata.get("namespace")
    if namespaced and namespace is not None and (len(namespace) > 63 or not DNS1123_LABEL.match(namespace)):
        yield FieldError("metadata.namespace", f'Invalid value: "{namespace}": {LABEL_MESSAGE}')


def blocked_env_errors(container: dict, path: list, prefix: str = "") -> Iterator[FieldError]:
    """The environment variables of a container that modelplane refuses (PYTHONPATH)."""
    for index, env in enumerate(dicts(container.get("env"))):
        if env.get("name") in BLOCKED_ENV_VARS:
            message = f'setting {env["name"]} in container "{container.get("name", "")}" is not allowed for security reasons'
            yield FieldError(paths.join([*path, "env", index]), f"{prefix}{message}")


def containers_blocked_env_errors(pod: dict, path: list, prefix: str = "") -> Iterator[FieldError]:
    """Blocked environment variables in the containers and init containers of a pod spec."""
    for key in ("containers", "initContainers"):
        for index, container in enumerate(dicts(pod.get(key))):
            yield from blocked_env_errors(container, [*path, key, index], prefix)
