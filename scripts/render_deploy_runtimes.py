"""Writes deploy/runtimes/builtin-runtimes.yaml: the built-in ClusterServingRuntimes with the release's
image (tests/kube/test_deploy.py checks it is up to date)."""

from pathlib import Path

from modelplane.kube.runtimes import runtimes_yaml
from modelplane.kube.settings import KubeSettings

TARGET = Path(__file__).resolve().parents[1] / "deploy" / "runtimes" / "builtin-runtimes.yaml"

if __name__ == "__main__":
    TARGET.write_text(runtimes_yaml(KubeSettings()))
    print(TARGET)
