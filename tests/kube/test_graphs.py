"""An InferenceGraph's router: its objects in both modes, its graph with each service resolved to the
service's in-cluster URL, and the router actually taking that graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

from modelplane.api.constants import KNATIVE
from modelplane.kube.settings import KubeSettings
from modelplane.local.ports import free_loopback_port

from .helpers import SAMPLES, named, render_file, render_text


def graph_json(deployment_or_ksvc: dict) -> dict:
    container = deployment_or_ksvc["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["modelplane", "router"]
    assert container["args"][0] == "--graph-json"
    return json.loads(container["args"][1])


def test_standard_mode_router():
    rendering = render_file(SAMPLES / "graph-raw.yaml", KubeSettings())
    deployment = named(rendering, "Deployment", "model-chainer-raw")
    labels = deployment["metadata"]["labels"]
    assert labels["serving.kserve.io/inferencegraph"] == "model-chainer-raw"
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "isvc.model-chainer-raw"}}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["name"] == "model-chainer-raw"
    assert container["image"] == KubeSettings().image
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": 8080},
        "initialDelaySeconds": 5,
        "timeoutSeconds": 2,
        "periodSeconds": 5,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"] == KubeSettings().router_resources
    assert "env" not in container
    headers = KubeSettings(router_propagate_headers=("Authorization", "X-Trace-.*"))
    propagating = named(render_file(SAMPLES / "graph-raw.yaml", headers), "Deployment", "model-chainer-raw")
    assert propagating["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "PROPAGATE_HEADERS", "value": "Authorization,X-Trace-.*"}
    ]
    steps = graph_json(deployment)["nodes"]["root"]["steps"]
    assert [s["serviceUrl"] for s in steps] == [
        # --model_name=sklearn names the model; the xgboost service speaks v2
        "http://isvc-sklearn-graph-predictor.default.svc.cluster.local/v1/models/sklearn:predict",
        "http://isvc-xgboost-graph-predictor.default.svc.cluster.local/v2/models/isvc-xgboost-graph/infer",
    ]
    assert [s["serviceName"] for s in steps] == ["isvc-sklearn-graph", "isvc-xgboost-graph"]
    service = named(rendering, "Service", "model-chainer-raw")
    assert service["spec"]["ports"] == [
        {"name": "model-chainer-raw", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    ]
    hpa = named(rendering, "HorizontalPodAutoscaler", "model-chainer-raw")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    route = named(rendering, "HTTPRoute", "model-chainer-raw")
    assert route["spec"]["hostnames"] == ["model-chainer-raw-default.example.com"]


def test_knative_mode_router_and_a_transformer_fronted_service():
    rendering = render_text(
        """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: fronted}
spec:
  transformer:
    containers: [{image: example/t}]
  predictor:
    sklearn: {storageUri: gs://models/iris}
---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: chain}
spec:
  timeout: 40
  nodes:
    root:
      routerType: Sequence
      steps: [{serviceName: fronted}]
""",
        KubeSettings(default_mode=KNATIVE),
    )
    ksvc = named(rendering, "Service", "chain")
    assert ksvc["apiVersion"] == "serving.knative.dev/v1"
    template = ksvc["spec"]["template"]
    assert template["metadata"]["labels"]["serving.kserve.io/kind"] == "InferenceGraph"
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "1"
    assert template["spec"]["timeoutSeconds"] == 40
    assert "name" not in template["spec"]["containers"][0]
    step = graph_json(ksvc)["nodes"]["root"]["steps"][0]
    assert (
        step["serviceUrl"] == "http://fronted-transformer.default.svc.cluster.local/v1/models/fronted:predict"
    )


def test_standard_mode_scaling_a_graph_router_cannot_have_is_said():
    rendering = render_text(
        """\
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: chain}
spec:
  scaleMetric: concurrency
  timeout: 30
  nodes:
    root:
      routerType: Sequence
      steps: [{serviceUrl: "http://example.org/v1/models/m:predict"}]
""",
        KubeSettings(),
    )
    assert [(n.path, n.message) for n in rendering.notes] == [
        ("spec.scaleMetric", "an HPA scales on cpu or memory, not concurrency: it scales on cpu")
    ]
    assert named(rendering, "HTTPRoute", "chain")["spec"]["rules"][-1]["timeouts"] == {"request": "30s"}


def test_a_service_not_in_the_input_is_assumed_and_said():
    rendering = render_file(SAMPLES.parent.parent / "api" / "samples" / "graph.yaml", KubeSettings())
    assert [n.message.split(":")[0] for n in rendering.notes] == [
        "InferenceService sklearn-iris is not in the input",
        "InferenceService xgboost-iris is not in the input",
    ]
    steps = graph_json(named(rendering, "Deployment", "model-chainer"))["nodes"]["splitter"]["steps"]
    assert (
        steps[0]["serviceUrl"]
        == "http://sklearn-iris-predictor.default.svc.cluster.local/v1/models/sklearn-iris:predict"
    )


def test_the_router_takes_the_rendered_graph(tmp_path):
    """The container's command line, run here: the router starts with the graph and says it is ready."""
    deployment = named(
        render_file(SAMPLES / "graph-raw.yaml", KubeSettings()), "Deployment", "model-chainer-raw"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port = free_loopback_port()
    argv = [sys.executable, "-m", "modelplane", *container["command"][1:], *container["args"]]
    process = subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port), "--drain-seconds", "0"],
        env=os.environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = None
        for _ in range(600):
            if process.poll() is not None:
                break
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert ready is not None and ready.status_code == 200, process.stderr.read() if process.poll() else ""
    finally:
        process.terminate()
        process.wait(timeout=30)
