"""The ConfigMaps and Secrets a replica's `envFrom`, `valueFrom` and volumes read on `modelplane up`,
from the store, when the replica starts (replicas/container_env.py, replicas/volumes.py)."""

from __future__ import annotations

from collections.abc import Mapping

from modelplane.api.config_maps import config_map_files, config_map_values
from modelplane.api.kinds import SECRET
from modelplane.api.secrets import secret_files, secret_values
from modelplane.local.api.errors import NotFound
from modelplane.local.api.store import Ref, Store


class EnvSources:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        """The values of the ConfigMap or Secret `namespace/name` as text, by key; None when there is none."""
        resource = self._get(kind, namespace, name)
        if resource is None:
            return None
        return secret_values(resource) if kind == SECRET.kind else config_map_values(resource)

    def files(self, kind: str, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The values of the ConfigMap or Secret `namespace/name` as a volume's files, by key."""
        resource = self._get(kind, namespace, name)
        if resource is None:
            return None
        return secret_files(resource) if kind == SECRET.kind else config_map_files(resource)

    def _get(self, kind: str, namespace: str, name: str) -> dict | None:
        try:
            return self.store.get(Ref(kind, namespace, name))
        except NotFound:
            return None
