"""What a Secret's and a ConfigMap's data share in Kubernetes: the keys they take, and 1 MiB of
values in all (the API server's `IsConfigMapKey` and `MaxSecretSize`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .errors import FieldError

MAX_DATA_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 253
KEY_PATTERN = re.compile(r"^[-._a-zA-Z0-9]+$")
KEY_MESSAGE = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def key_errors(field: str, key: object) -> Iterator[FieldError]:
    """What Kubernetes refuses in a key of `field`: more than 253 characters, a character other than
    `[-._a-zA-Z0-9]`, and `.`, `..` or a leading `..` (a volume's file would climb out of its folder)."""
    key = str(key)
    path = f"{field}[{key}]"
    if len(key) > MAX_KEY_LENGTH:
        yield FieldError(path, f'Invalid value: "{key}": must be no more than {MAX_KEY_LENGTH} characters')
    if not KEY_PATTERN.match(key):
        yield FieldError(path, f'Invalid value: "{key}": {KEY_MESSAGE}')
    if key in (".", ".."):
        yield FieldError(path, f"Invalid value: \"{key}\": must not be '{key}'")
    elif key.startswith(".."):
        yield FieldError(path, f"Invalid value: \"{key}\": must not start with '..'")


def size_errors(path: str, sizes: Iterable[int]) -> Iterator[FieldError]:
    """Values of more than 1 MiB in all (`sizes` in bytes), reported at `path` as Kubernetes does."""
    if sum(sizes) > MAX_DATA_BYTES:
        yield FieldError(path, f"Too long: may not be more than {MAX_DATA_BYTES} bytes")


def changes_to_an_immutable(
    resource: dict, old: dict | None, fields: tuple[str, ...]
) -> Iterator[FieldError]:
    """What Kubernetes refuses in an update of a Secret or ConfigMap stored with `immutable: true`:
    `immutable` turned off, and each of `fields` changed, each named."""
    if old is None or old.get("immutable") is not True:
        return
    message = "Forbidden: field is immutable when `immutable` is set"
    if resource.get("immutable") is not True:
        yield FieldError("immutable", message)
    for field in fields:
        if resource.get(field) != old.get(field):
            yield FieldError(field, message)
