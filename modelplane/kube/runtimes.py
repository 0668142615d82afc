"""modelplane's built-in ClusterServingRuntimes as a cluster gets them: the same resources as
`modelplane.api.builtin_runtimes`, with modelplane's image in place of `modelplane:latest` (the full
variant for PyTorch and TensorFlow). `deploy/runtimes/` holds them as YAML (`runtimes_yaml`)."""

from __future__ import annotations

import yaml

from modelplane.api import builtin_cluster_runtimes
from modelplane.kube.images import cluster_image
from modelplane.kube.settings import KubeSettings

HEADER = (
    "# modelplane's built-in ClusterServingRuntimes, with modelplane's image.\n"
    "# Made from modelplane/api/runtimes/ by `python3 scripts/render_deploy_runtimes.py`: edit those, not this.\n"
)


def cluster_runtimes(settings: KubeSettings) -> list[dict]:
    """The single-model ones: the operator does not serve ModelMesh services, and a cluster that runs
    ModelMesh Serving has its own multi-model runtimes, under the same names."""
    runtimes = [r for r in builtin_cluster_runtimes() if r["spec"].get("multiModel") is not True]
    for runtime in runtimes:
        for container in (runtime.get("spec") or {}).get("containers") or []:
            container["image"] = cluster_image(container, settings)
    return runtimes


def runtimes_yaml(settings: KubeSettings) -> str:
    return (
        HEADER
        + "---\n"
        + yaml.safe_dump_all(cluster_runtimes(settings), sort_keys=False, explicit_start=False)
    )
