"""The rules a TrainedModel must meet, with KServe's messages (`trainedmodel_webhook.go`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import FieldError
from ..quantity import parse_quantity
from .common import mapping

NAME_FMT = "^[a-zA-Z0-9_-]+$"
NAME_RE = re.compile(NAME_FMT)
# KServe's model agent fetches from these; modelplane also reads local files (file://, absolute paths, and
# pvc:// claims, which are folders on the machine).
STORAGE_PREFIXES = ("s3://", "gs://", "https://", "http://", "file://", "/", "pvc://")


def trained_model_errors(tm: dict, old: dict | None = None) -> list[FieldError]:
    """Every rule a TrainedModel breaks; `old` is the stored version on an update."""
    name = mapping(tm.get("metadata")).get("name", "")
    model = mapping(mapping(tm.get("spec")).get("model"))
    errors = list(_name_errors(name))
    uri = model.get("storageUri", "")
    if not uri.startswith(STORAGE_PREFIXES):
        errors.append(
            FieldError(
                "spec.model.storageUri",
                f'the Trained Model "{name}" storageUri field is invalid. The storage uri must start with one of the '
                f'prefixes: {", ".join(STORAGE_PREFIXES)}. (the storage uri given is "{uri}")',
            )
        )
    memory = parse_quantity(model.get("memory"))
    if memory is not None and memory < 0:
        # KServe does not check it; a negative size would make room for other models on the server.
        errors.append(
            FieldError(
                "spec.model.memory",
                f'Invalid value: "{model.get("memory")}": must be greater than or equal to 0',
            )
        )
    if old is not None:
        errors += _memory_change_errors(name, model, mapping(mapping(old.get("spec")).get("model")))
    return errors


def _name_errors(name: str) -> Iterator[FieldError]:
    if not NAME_RE.match(name):
        yield FieldError(
            "metadata.name",
            f'the Trained Model "{name}" is invalid: a Trained Model name must consist of alphanumeric characters, '
            f"'_', or '-'. (e.g. \"my-Name\" or \"abc_123\", regex used for validation is '{NAME_FMT}')",
        )


def _memory_change_errors(name: str, model: dict, old_model: dict) -> Iterator[FieldError]:
    new, old = model.get("memory"), old_model.get("memory")
    if parse_quantity(new) != parse_quantity(old):
        yield FieldError(
            "spec.model.memory",
            f'the Trained Model "{name}" memory field is immutable. The memory was "{old}" but it is updated to "{new}"',
        )
