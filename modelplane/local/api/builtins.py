"""modelplane's built-in ClusterServingRuntimes in the control-plane API.

They are not stored: list and get show them next to the stored ones, with the annotation
`modelplane.io/built-in: "true"` and the status a stored runtime gets, until a stored one of the same
name replaces one (apply, create, PUT or PATCH it). Deleting the stored one brings the built-in back;
a built-in one itself cannot be deleted (apply one with `spec.disabled: true` to turn it off).
"""

from __future__ import annotations

from typing import Any

from modelplane.api import with_builtin_runtimes
from modelplane.api.builtin_runtimes import BUILT_IN_ANNOTATION
from modelplane.control.runtime_status import serving_runtime_status
from modelplane.local.api.errors import MethodNotAllowed

Resource = dict[str, Any]


class BuiltinRuntimes:
    """The built-in runtimes as the API shows them; `since` is when they appeared (the API's start)."""

    def __init__(self, since: str) -> None:
        self.since = since

    def listed(self, stored: list[Resource], resource_version: str) -> list[Resource]:
        """The stored ClusterServingRuntimes and the built-in ones no stored one replaces, in name order."""
        names = {runtime["metadata"]["name"] for runtime in stored}
        return [
            runtime if runtime["metadata"]["name"] in names else self._shown(runtime, resource_version)
            for runtime in with_builtin_runtimes(stored)
        ]

    def named(self, name: str, resource_version: str) -> Resource | None:
        """The built-in runtime of that name, as listed; None if there is none."""
        for runtime in with_builtin_runtimes([]):
            if runtime["metadata"]["name"] == name:
                return self._shown(runtime, resource_version)
        return None

    def not_stored(self, name: str) -> MethodNotAllowed:
        """The refusal of a delete, or a status write, of a built-in runtime."""
        return MethodNotAllowed(
            f'clusterservingruntime "{name}" is built in: apply one of the same name to replace it '
            "(with spec.disabled: true to turn it off)"
        )

    def replacement(self, builtin: Resource) -> Resource:
        """A built-in runtime as a PATCH starts from: without what the API added to it."""
        builtin.pop("status", None)
        metadata = builtin["metadata"]
        for key in ("generation", "creationTimestamp", "resourceVersion"):
            metadata.pop(key, None)
        metadata["annotations"].pop(BUILT_IN_ANNOTATION, None)
        return builtin

    def _shown(self, runtime: Resource, resource_version: str) -> Resource:
        metadata = runtime["metadata"]
        metadata.update(generation=1, creationTimestamp=self.since, resourceVersion=resource_version)
        runtime["status"] = serving_runtime_status(runtime, now=self.since)
        return runtime
