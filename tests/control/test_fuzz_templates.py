"""Fuzzed with hypothesis: every InferenceService and InferenceGraph that admission accepts (drawn from
the CRD schemas, tests/api/strategies.py) becomes what each platform runs, or a refusal that says why:
the revision templates of `modelplane up` (and the command, probes and hooks of their replicas), and the Kubernetes objects of both modes. A crash here would be a
stored service that the reconciler or the operator cannot handle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.api import RuntimeSelectionError, builtin_cluster_runtimes
from modelplane.api.errors import ValidationError
from modelplane.api.kinds import INFERENCE_GRAPH, INFERENCE_SERVICE
from modelplane.control.admission import admit_with_platform_checks
from modelplane.control.revision_templates import revision_templates
from modelplane.kube.render import RenderError, render
from modelplane.kube.settings import KubeSettings
from modelplane.local.replicas.command import ReplicaPorts, replica_launch
from modelplane.local.replicas.container_probes import replica_probes
from modelplane.local.replicas.lifecycle import replica_lifecycle
from tests.api.strategies import documents

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
RUNTIMES = builtin_cluster_runtimes()


def admitted(spec: dict, kind=INFERENCE_SERVICE) -> dict | None:
    resource = {
        "apiVersion": f"{kind.group}/{kind.version}",
        "kind": kind.kind,
        "metadata": {"name": "fuzzed", "namespace": "default"},
        "spec": spec,
    }
    try:
        return admit_with_platform_checks(resource)
    except ValidationError:
        return None


@FUZZ
@given(spec=documents(INFERENCE_SERVICE))
def test_an_admitted_service_becomes_templates_or_a_runtime_refusal(spec):
    isvc = admitted(spec)
    if isvc is None:
        return
    try:
        templates = revision_templates(isvc, [], RUNTIMES)
    except RuntimeSelectionError as exc:
        assert str(exc)
        return
    assert "predictor" in templates
    ports = ReplicaPorts(18080, 18081)
    for template in templates.values():  # what the supervisor makes of each, before it starts a process
        launch = replica_launch(template, ports, Path("/tmp/model"), domain="example.com", gateway_port=8080)
        assert launch.argv
        replica_probes(template, ports, launch.env)
        replica_lifecycle(template, ports, launch.env)


@pytest.mark.parametrize("kind", [INFERENCE_SERVICE, INFERENCE_GRAPH], ids=lambda kind: kind.kind)
@pytest.mark.parametrize("mode", ["Standard", "Knative"])
@FUZZ
@given(data=st.data())
def test_an_admitted_resource_renders_or_is_refused_with_a_reason(mode, kind, data):
    settings = KubeSettings(default_mode=mode)
    resource = admitted(data.draw(documents(kind)), kind)
    if resource is None:
        return
    try:
        rendering = render([resource, *RUNTIMES], settings)
    except RenderError as exc:
        assert str(exc)
        return
    assert rendering.objects
