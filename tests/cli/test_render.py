"""`modelplane render`, run as the real command: the objects on stdout as `kubectl apply -f -` takes
them, warnings on stderr, and bad input refused with the same one-line messages as `modelplane apply`
(checked against `modelplane apply` talking to a real control-plane API)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelplane.local.api.process import ApiProcess

REPO = Path(__file__).resolve().parents[2]
ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
spec:
  predictor:
    sklearn:
      storageUri: gs://models/iris
"""


def run(*args: str, stdin: str | None = None, api: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MODELPLANE_API"}
    if api:
        env["MODELPLANE_API"] = api
    return subprocess.run(
        [sys.executable, "-m", "modelplane", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_render_prints_the_objects_of_each_resource():
    result = run("render", "-f", str(REPO / "examples" / "dog-breed-pipeline.yaml"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    objects = list(yaml.safe_load_all(result.stdout))
    names = [(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in ("Deployment", "HTTPRoute")]
    assert names == [
        ("Deployment", "cat-dog-classifier-predictor"),
        ("HTTPRoute", "cat-dog-classifier"),
        ("HTTPRoute", "cat-dog-classifier-predictor"),
        ("Deployment", "dog-breed-classifier-predictor"),
        ("HTTPRoute", "dog-breed-classifier"),
        ("HTTPRoute", "dog-breed-classifier-predictor"),
        ("Deployment", "dog-breed-pipeline"),
        ("HTTPRoute", "dog-breed-pipeline"),
    ]


def test_mode_routes_image_namespace_and_stdin():
    result = run(
        "render", "-f", "-", "--mode", "knative", "--image", "registry.example/mp:2", "-n", "prod",
        stdin=ISVC.format(name="iris"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (ksvc,) = yaml.safe_load_all(result.stdout)
    assert (ksvc["apiVersion"], ksvc["metadata"]["namespace"]) == ("serving.knative.dev/v1", "prod")
    assert ksvc["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/mp:2"
    ingress = run("render", "-f", "-", "--ingress", "--ingress-class", "nginx", "--domain", "ml.example.org",
                  stdin=ISVC.format(name="iris"))  # fmt: skip
    (route,) = [o for o in yaml.safe_load_all(ingress.stdout) if o["kind"] == "Ingress"]
    assert route["spec"]["ingressClassName"] == "nginx"
    assert route["spec"]["rules"][0]["host"] == "iris-default.ml.example.org"
    both = run("render", "-f", "-", "--ingress", "--gateway-api", stdin=ISVC.format(name="iris"))
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    untimed = run("render", "-f", "-", "--disable-http-route-timeout", stdin=ISVC.format(name="iris"))
    routes = [o for o in yaml.safe_load_all(untimed.stdout) if o["kind"] == "HTTPRoute"]
    assert routes and all("timeouts" not in rule for route in routes for rule in route["spec"]["rules"])


def test_warnings_name_the_file_and_line(tmp_path):
    manifest = tmp_path / "fetched.yaml"
    manifest.write_text(
        ISVC.format(name="fetched").replace(
            "    sklearn:\n", "    storageContainerName: mine\n    sklearn:\n"
        )
    )
    result = run("render", "-f", str(manifest), "--mode", "knative")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"Warning: {manifest}:7: spec.predictor.storageContainerName: not acted on: modelplane's storage "
        "initializer fetches every model"
    ]


def test_an_unknown_field_is_warned_and_left_out_as_the_api_server_prunes_it(tmp_path):
    manifest = tmp_path / "misplaced.yaml"
    manifest.write_text(
        ISVC.format(name="misplaced").replace(
            "      storageUri:", "      storageUris: [gs://a]\n      storageUri:"
        )
    )
    result = run("render", "-f", str(manifest))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f'Warning: {manifest}:8: unknown field "spec.predictor.sklearn.storageUris" (left out, as the API '
        "server prunes it)"
    ]
    deployment = next(item for item in yaml.safe_load_all(result.stdout) if item["kind"] == "Deployment")
    assert all(
        "storageUris" not in container for container in deployment["spec"]["template"]["spec"]["containers"]
    )


def test_a_logger_on_another_image_is_a_logger_container_in_front_of_it():
    custom = (
        "    timeout: 600\n    logger: {mode: response, url: 'http://receiver.logs/'}\n    containers:\n"
        "    - name: kserve-container\n      image: example.com/server:1\n      ports: [{containerPort: 8085}]\n"
    )
    result = run("render", "-f", "-", stdin=ISVC.format(name="logged").split("    sklearn:\n")[0] + custom)
    assert result.returncode == 0 and result.stderr == ""
    objects = list(yaml.safe_load_all(result.stdout))
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    server, logger = pod["containers"]
    assert server["image"] == "example.com/server:1" and "args" not in server
    assert logger["name"] == "logger" and logger["image"] == "ghcr.io/modelplane/modelplane:0.1.0"
    assert logger["args"] == [
        "logger",
        "--component-port=8085",
        "--response-timeout=600",
        "--payload-log-url=http://receiver.logs/",
        "--payload-log-mode=response",
        "--payload-log-inference-service=logged",
        "--payload-log-namespace=default",
        "--payload-log-component=predictor",
    ]
    assert logger["ports"] == [{"name": "agent-port", "containerPort": 9081, "protocol": "TCP"}]
    service = next(o for o in objects if o["kind"] == "Service")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, 9081)]


def test_a_scraped_pod_with_a_logger_container_is_scraped_at_the_loggers_metrics_port():
    """The logger serves its own metrics with the model server's on 9088 (KServe's aggregation port):
    the one port the pod's Prometheus annotations name holds both."""
    custom = (
        "    logger: {mode: all, url: 'http://receiver.logs/'}\n    containers:\n"
        "    - name: kserve-container\n      image: example.com/server:1\n      ports: [{containerPort: 8085}]\n"
    )
    annotated = ISVC.format(name="logged").replace(
        "  name: logged\n",
        "  name: logged\n  annotations:\n    serving.kserve.io/enable-prometheus-scraping: 'true'\n"
        "    prometheus.kserve.io/path: /stats\n",
    )
    for mode in ("standard", "knative"):
        result = run("render", "-f", "-", "--mode", mode, stdin=annotated.split("    sklearn:\n")[0] + custom)
        assert result.returncode == 0 and result.stderr == ""
        workload = next(
            o for o in yaml.safe_load_all(result.stdout) if o["kind"] in ("Deployment", "Service")
        )
        template = workload["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == ("9088", "/stats")
        logger = template["spec"]["containers"][-1]
        assert logger["args"][-3:] == [
            "--metrics-port=9088",
            "--metrics-path=/stats",
            "--component-metrics-port=8085",
        ]


def test_a_scraped_pod_with_a_batcher_container_is_scraped_at_the_front_sidecars_metrics_port():
    """The batcher serves its own metrics with the model server's; behind a logger, the logger serves
    those with its own on 9088, the one port the pod's Prometheus annotations name."""
    annotated = ISVC.format(name="batched").replace(
        "  name: batched\n",
        "  name: batched\n  annotations:\n    serving.kserve.io/enable-prometheus-scraping: 'true'\n",
    )
    container = (
        "    containers:\n"
        "    - name: kserve-container\n      image: example.com/server:1\n      ports: [{containerPort: 8085}]\n"
    )
    alone = "    batcher: {maxBatchSize: 4}\n" + container
    logged = "    logger: {mode: all, url: 'http://receiver.logs/'}\n" + alone
    for mode in ("standard", "knative"):
        rendered = {}
        for name, spec in (("alone", alone), ("logged", logged)):
            result = run(
                "render", "-f", "-", "--mode", mode, stdin=annotated.split("    sklearn:\n")[0] + spec
            )
            assert result.returncode == 0 and result.stderr == ""
            workload = next(
                o for o in yaml.safe_load_all(result.stdout) if o["kind"] in ("Deployment", "Service")
            )
            template = workload["spec"]["template"]
            containers = {c["name"]: c for c in template["spec"]["containers"]}
            rendered[name] = template["metadata"]["annotations"]["prometheus.io/port"], containers

        port, containers = rendered["alone"]
        assert port == "9088"
        assert containers["batcher"]["args"][-3:] == [
            "--metrics-port=9088",
            "--metrics-path=/metrics",
            "--upstream-metrics-port=8085",
        ]
        port, containers = rendered["logged"]
        assert port == "9088"
        assert containers["batcher"]["args"][-3:] == [
            "--metrics-port=9089",
            "--metrics-path=/metrics",
            "--upstream-metrics-port=8085",
        ]
        assert containers["logger"]["args"][-3:] == [
            "--metrics-port=9088",
            "--metrics-path=/metrics",
            "--component-metrics-port=9089",
        ]


def test_in_knative_mode_the_logger_is_the_container_the_pod_serves():
    """A Knative pod serves one container's port: the logger's, with the model server's readiness probe."""
    custom = (
        "    logger: {mode: all, url: 'http://receiver.logs/'}\n    containers:\n"
        "    - name: kserve-container\n      image: example.com/server:1\n"
        "      ports: [{containerPort: 8085, protocol: TCP}]\n"
        "      readinessProbe: {httpGet: {path: /v2/health/ready, port: 8085}, periodSeconds: 5}\n"
    )
    stdin = ISVC.format(name="logged").split("    sklearn:\n")[0] + custom
    result = run("render", "-f", "-", "--mode", "knative", stdin=stdin)
    assert result.returncode == 0 and result.stderr == ""
    (ksvc,) = [o for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Service"]
    server, logger = ksvc["spec"]["template"]["spec"]["containers"]
    assert "ports" not in server and "readinessProbe" not in server
    # Knative's webhook takes no port name but h2c or http1 (or none): the name chooses the protocol.
    assert logger["ports"] == [{"containerPort": 9081, "protocol": "TCP"}]
    assert logger["args"][:2] == ["logger", "--component-port=8085"]
    assert "--wait-for-component" in logger["args"]
    assert logger["readinessProbe"] == {"httpGet": {"path": "/v2/health/ready"}, "periodSeconds": 5}
    tcp = run("render", "-f", "-", "--mode", "knative", stdin=stdin.replace(
        "{httpGet: {path: /v2/health/ready, port: 8085}, periodSeconds: 5}", "{tcpSocket: {port: 8085}}"
    ))  # fmt: skip
    (ksvc,) = [o for o in yaml.safe_load_all(tcp.stdout) if o["kind"] == "Service"]
    assert ksvc["spec"]["template"]["spec"]["containers"][1]["readinessProbe"] == {"tcpSocket": {}}
    bare = run("render", "-f", "-", "--mode", "knative", stdin=stdin.rsplit("      readinessProbe", 1)[0])
    (ksvc,) = [o for o in yaml.safe_load_all(bare.stdout) if o["kind"] == "Service"]
    assert "readinessProbe" not in ksvc["spec"]["template"]["spec"]["containers"][1]  # Knative's TCP one


def test_a_logger_on_a_built_in_runtime_is_modelplane_serves_flags():
    logger = (
        "    logger:\n      mode: request\n      url: s3://logs/iris\n      metadataHeaders: [x-tenant]\n"
        "      storage: {key: logs, path: run-1, parameters: {format: csv, region: eu-west-1}}\n"
        "      batchSize: 10\n      batchInterval: 5s\n"
    )
    result = run(
        "render",
        "-f",
        "-",
        stdin=ISVC.format(name="logged").replace("    sklearn:\n", logger + "    sklearn:\n"),
    )
    assert result.returncode == 0 and result.stderr == ""
    deployment = next(o for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    flags = [arg for arg in container["args"] if arg.startswith("--payload-log-")]
    assert flags == [
        "--payload-log-url=s3://logs/iris",
        "--payload-log-mode=request",
        "--payload-log-inference-service=logged",
        "--payload-log-namespace=default",
        "--payload-log-component=predictor",
        "--payload-log-metadata-headers=x-tenant",
        "--payload-log-store-format=csv",
        "--payload-log-batch-size=10",
        "--payload-log-store-path=run-1",
        "--payload-log-batch-interval=5s",
    ]
    env = {item["name"]: item for item in container["env"]}
    assert env["STORAGE_CONFIG"]["valueFrom"] == {"secretKeyRef": {"name": "storage-config", "key": "logs"}}
    assert env["STORAGE_OVERRIDE_CONFIG"]["value"] == '{"region": "eu-west-1"}'


def test_a_service_that_cannot_run_is_one_line(tmp_path):
    manifest = tmp_path / "runtime.yaml"
    manifest.write_text(
        ISVC.format(name="lost").replace(
            "    sklearn:\n", "    model:\n      runtime: nowhere\n      modelFormat: {name: sklearn}\n"
        )
    )
    result = run("render", "-f", str(manifest))
    assert result.returncode == 2
    assert result.stderr == (
        f'modelplane render: {manifest}:7: InferenceService "lost" cannot run: '
        "No ServingRuntimes or ClusterServingRuntimes with the name: nowhere\n"
    )
    assert result.stdout == ""


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with ApiProcess(tmp_path_factory.mktemp("home")) as process:
        yield process.url


BAD_INPUTS = {
    "a name KServe refuses": ISVC.format(name="Iris"),
    "two implementations": ISVC.format(name="both").replace(
        "    sklearn:\n", "    xgboost: {}\n    sklearn:\n"
    ),
    "an autoscaler class": ISVC.format(name="klass").replace(
        "metadata:\n", "metadata:\n  annotations: {serving.kserve.io/autoscalerClass: kpa}\n"
    ),
    "a graph with a cycle": """\
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: loop}
spec:
  nodes:
    root: {routerType: Sequence, steps: [{nodeName: other}]}
    other: {routerType: Sequence, steps: [{nodeName: root}]}
""",
    "a canary outside Standard mode": ISVC.format(name="early")
    + "  canary:\n    - trafficPercent: 10\n      predictor: {name: v2, sklearn: {storageUri: gs://models/v2}}\n",
    "a YAML error": "apiVersion: v1\nkind: [unclosed\n",
    "a kind modelplane does not serve": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n",
}


@pytest.mark.parametrize("text", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_refused_as_apply_refuses_it(api, tmp_path, text):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(text)
    applied = run("apply", "-f", str(manifest), api=api)
    # `modelplane up` resolves an unannotated service's mode as KServe's shipped configuration does: Knative.
    rendered = run("render", "-f", str(manifest), "--mode", "knative")
    assert (applied.returncode, rendered.returncode) == (1, 2)  # kubectl's exit code, and modelplane's
    assert rendered.stdout == ""
    assert len(rendered.stderr.splitlines()) == 1
    assert rendered.stderr.removeprefix("modelplane render: ").replace("(nothing was rendered)", "") == (
        applied.stderr.removeprefix("modelplane apply: ").replace("(nothing was applied)", "")
    )
