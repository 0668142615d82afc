"""The ConfigMaps and Secrets a replica's `envFrom` and `valueFrom` read on `modelplane up`, from the
store, when the replica starts (replicas/container_env.py)."""

from __future__ import annotations

from collections.abc import Mapping

from modelplane.api.config_maps import config_map_values
from modelplane.api.kinds import SECRET
from modelplane.api.secrets import secret_values
from modelplane.local.api.errors import NotFound
from modelplane.local.api.store import Ref, Store


class EnvSources:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        """The values of the ConfigMap or Secret `namespace/name`, by key; None when there is none."""
        try:
            resource = self.store.get(Ref(kind, namespace, name))
        except NotFound:
            return None
        return secret_values(resource) if kind == SECRET.kind else config_map_values(resource)
