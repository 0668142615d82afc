"""What every reconciler shares: the cluster, the installation's settings, and the time."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from modelplane.api import AdmissionConfig
from modelplane.kube.operator.cluster import Cluster
from modelplane.kube.settings import KubeSettings


@dataclass(frozen=True)
class Context:
    cluster: Cluster
    settings: KubeSettings

    @property
    def admission(self) -> AdmissionConfig:
        return AdmissionConfig(default_deployment_mode=self.settings.default_mode)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_ready(resource: dict) -> bool:
    return any(
        x.get("type") == "Ready" and x.get("status") == "True"
        for x in ((resource.get("status") or {}).get("conditions") or [])
    )
