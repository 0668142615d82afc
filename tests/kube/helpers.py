"""Rendering resources as `modelplane render` does: placed in a namespace, admitted, rendered."""

from __future__ import annotations

from pathlib import Path

from modelplane.api import AdmissionConfig, load_path, load_text
from modelplane.api.kinds import kind_of
from modelplane.control.admission import admit_with_platform_checks
from modelplane.kube.render import Rendering, render
from modelplane.kube.settings import KubeSettings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).parent / "samples"
KSERVE_RUNTIMES = REPO / "tests" / "api" / "kserve_runtimes"
SOURCES = sorted(
    [
        *(REPO / "examples").glob("*.yaml"),
        *(REPO / "tests" / "api" / "samples").glob("*.yaml"),
        *SAMPLES.glob("*.yaml"),
    ]
)


def admitted(resources: list[dict], settings: KubeSettings) -> list[dict]:
    config = AdmissionConfig(default_deployment_mode=settings.default_mode)
    out = []
    for resource in resources:
        kind = kind_of(resource)
        if kind is not None and kind.namespaced:
            resource["metadata"].setdefault("namespace", "default")
        out.append(admit_with_platform_checks(resource, config=config))
    return out


def render_text(
    text: str, settings: KubeSettings | None = None, *, kserve_runtimes: bool = False
) -> Rendering:
    settings = settings or KubeSettings()
    resources = [d.resource for d in load_text(text)]
    return render(admitted(_with_runtimes(resources, kserve_runtimes), settings), settings)


def render_file(path: Path, settings: KubeSettings, *, kserve_runtimes: bool = False) -> Rendering:
    resources = [d.resource for d in load_path(path)]
    return render(admitted(_with_runtimes(resources, kserve_runtimes), settings), settings)


def _with_runtimes(resources: list[dict], kserve_runtimes: bool) -> list[dict]:
    if not kserve_runtimes:
        return resources
    return [d.resource for d in load_path(KSERVE_RUNTIMES)] + resources


def objects_of(rendering: Rendering, kind: str) -> list[dict]:
    return [o for o in rendering.objects if o["kind"] == kind]


def named(rendering: Rendering, kind: str, name: str) -> dict:
    found = [o for o in objects_of(rendering, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {[o['metadata']['name'] for o in objects_of(rendering, kind)]}"
    return found[0]
