"""Standard mode's objects, field by field, against what KServe's raw reconcilers write
(names, labels, owner references, pods, Services, autoscalers, canaries and routes)."""

from __future__ import annotations

import json

import pytest
import yaml

from modelplane.api import load_text, with_builtin_runtimes
from modelplane.api.constants import KNATIVE, STANDARD
from modelplane.kube.render import RenderError, isvc_objects
from modelplane.kube.settings import KubeSettings

from .helpers import SAMPLES, admitted, named, objects_of, render_file, render_text
from .schemas import problems

SKLEARN = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  namespace: models
  uid: 6a1c2a0e-0000-4000-8000-000000000001
  labels: {{team: blue}}
  annotations:
    serving.kserve.io/deploymentMode: Standard
    serving.kserve.io/autoscalerClass: {autoscaler}
    autoscaling.knative.dev/min-scale: "3"
    example.com/owner: ml
spec:
  predictor:
    minReplicas: {min_replicas}
    labels: {{tier: gold}}
    annotations: {{example.com/component: predictor}}
    sklearn:
      storageUri: s3://models/iris
"""


def sklearn(autoscaler: str = "hpa", min_replicas: int = 2) -> str:
    return SKLEARN.format(autoscaler=autoscaler, min_replicas=min_replicas)


def containers_by_name(deployment: dict) -> dict[str, dict]:
    pod = deployment["spec"]["template"]["spec"]
    return {c["name"]: c for c in [*pod["containers"], *pod.get("initContainers", [])]}


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_objects_are_named_labelled_and_owned_as_kserve_does():
    rendering = render_text(sklearn())
    kinds = [(o["kind"], o["metadata"]["name"]) for o in rendering.objects]
    assert kinds == [
        ("Deployment", "iris-predictor"),
        ("Service", "iris-predictor"),
        ("HorizontalPodAutoscaler", "iris-predictor"),
        ("HTTPRoute", "iris"),
        ("HTTPRoute", "iris-predictor"),
    ]
    owner = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "name": "iris",
        "uid": "6a1c2a0e-0000-4000-8000-000000000001",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    for obj in rendering.objects:
        assert obj["metadata"]["namespace"] == "models"
        assert obj["metadata"]["ownerReferences"] == [owner]
        assert obj["metadata"]["labels"]["serving.kserve.io/inferenceservice"] == "iris"
    deployment = named(rendering, "Deployment", "iris-predictor")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels == {
        "team": "blue",
        "tier": "gold",
        "serving.kserve.io/inferenceservice": "iris",
        "component": "predictor",
        "app": "isvc.iris-predictor",
    }
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "isvc.iris-predictor"}}
    assert named(rendering, "Service", "iris-predictor")["spec"]["selector"] == {"app": "isvc.iris-predictor"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["example.com/owner"] == "ml"
    assert annotations["example.com/component"] == "predictor"
    assert annotations["prometheus.kserve.io/port"] == "8080"  # the runtime's
    assert "modelFormat" not in annotations  # KServe's serviceAnnotationDisallowedList
    assert "autoscaling.knative.dev/min-scale" not in annotations
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert (deployment["spec"]["revisionHistoryLimit"], deployment["spec"]["progressDeadlineSeconds"]) == (
        10,
        600,
    )


def test_without_a_uid_there_is_no_owner_reference():
    rendering = render_text(sklearn().replace("  uid: 6a1c2a0e-0000-4000-8000-000000000001\n", ""))
    assert all("ownerReferences" not in o["metadata"] for o in rendering.objects)


def test_the_pod_runs_the_runtime_with_the_model_fetched_first():
    deployment = named(render_text(sklearn()), "Deployment", "iris-predictor")
    containers = containers_by_name(deployment)
    server = containers["kserve-container"]
    assert server["image"] == KubeSettings().image
    assert server["command"] == ["modelplane", "serve"]
    assert server["args"] == [
        "--model-dir=/mnt/models",
        "--model-name=iris",
        "--runtime=sklearn",
        "--http-port=8080",
        "--grpc-port=8081",
        "--host=0.0.0.0",
    ]
    assert env_of(server) == {"INFERENCE_SERVICE_NAME": "iris", "PROTOCOL": "v1"}
    assert server["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert server["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert server["volumeMounts"] == [
        {
            "name": "kserve-provision-location",
            "mountPath": "/mnt/models",
            "subPath": "models",
            "readOnly": True,
        }
    ]
    initializer = containers["storage-initializer"]
    assert initializer["command"] == ["modelplane", "storage", "fetch"]
    assert initializer["args"] == [
        "s3://models/iris",
        "/mnt/provision/models",
        "--no-cache",
        "--keep-existing",
    ]
    assert initializer["volumeMounts"] == [
        {"name": "kserve-provision-location", "mountPath": "/mnt/provision"}
    ]
    assert env_of(initializer) == {
        "STORAGE_CONFIG": {"secretKeyRef": {"name": "storage-config", "key": "default", "optional": True}}
    }
    assert initializer["terminationMessagePolicy"] == "FallbackToLogsOnError"
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "kserve-provision-location", "emptyDir": {}}]


def test_a_storage_spec_gets_its_key_from_the_named_secret():
    rendering = render_file(SAMPLES / "storage-spec.yaml", KubeSettings())
    initializer = containers_by_name(named(rendering, "Deployment", "sklearn-storage-spec-predictor"))[
        "storage-initializer"
    ]
    assert json.loads(initializer["args"][0]) == {
        "key": "localMinIO",
        "path": "sklearn/iris",
        "parameters": {"bucket": "example-models"},
    }
    assert env_of(initializer)["STORAGE_CONFIG"] == {
        "secretKeyRef": {"name": "my-storage-config", "key": "localMinIO"}
    }
    assert not objects_of(rendering, "HTTPRoute")  # networking.kserve.io/visibility: cluster-local


def test_storage_uris_get_an_initializer_each_and_one_mount_at_their_common_parent():
    text = sklearn().replace(
        "    sklearn:\n      storageUri: s3://models/iris\n",
        "    storageUris:\n"
        "      - {uri: s3://models/iris, mountPath: /mnt/models/base}\n"
        "      - {uri: gs://models/adapters/one, mountPath: /mnt/models/adapters/one}\n"
        "    sklearn: {}\n",
    )
    rendering = render_text(text)
    deployment = named(rendering, "Deployment", "iris-predictor")
    containers = containers_by_name(deployment)
    first, second = containers["storage-initializer-0"], containers["storage-initializer-1"]
    assert first["args"] == [
        "s3://models/iris",
        "/mnt/provision/models/base",
        "--no-cache",
        "--keep-existing",
    ]
    assert second["args"][:2] == ["gs://models/adapters/one", "/mnt/provision/models/adapters/one"]
    volumes = [v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]]
    assert volumes == ["kserve-provision-location"]
    mounts = containers["kserve-container"]["volumeMounts"]
    assert {
        "name": "kserve-provision-location",
        "mountPath": "/mnt/models",
        "subPath": "models",
        "readOnly": True,
    } in mounts
    assert "MULTI_MODEL_SERVER" not in env_of(containers["kserve-container"])
    assert not [p for obj in rendering.objects for p in problems(obj)]
    assert not [n for n in rendering.notes if "storageUris" in str(n)]


def test_service_ports():
    service = named(render_text(sklearn()), "Service", "iris-predictor")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {
            "name": "grpc",
            "port": 8081,
            "targetPort": 8081,
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
        },
    ]
    custom = render_file(SAMPLES.parent.parent / "api" / "samples" / "custom-predictor.yaml", KubeSettings())
    ports = named(custom, "Service", "custom-model-predictor")["spec"]["ports"]
    assert ports == [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]  # the container port's name: none
    no_ports = render_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: plain}\n"
        "spec: {predictor: {containers: [{name: kserve-container, image: example/server}]}}\n"
    )
    assert named(no_ports, "Service", "plain-predictor")["spec"]["ports"] == [
        {"name": "plain-predictor", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    ]
    probe = containers_by_name(named(no_ports, "Deployment", "plain-predictor"))["kserve-container"][
        "readinessProbe"
    ]
    assert probe == {
        "tcpSocket": {"port": 8080},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "failureThreshold": 3,
    }


def test_a_collocated_transformer_takes_the_services_port():
    rendering = render_text(
        sklearn().replace(
            "    sklearn:\n",
            "    containers:\n      - name: transformer-container\n        image: example/t\n"
            "        ports: [{containerPort: 9000, name: http}]\n    sklearn:\n",
        )
    )
    ports = named(rendering, "Service", "iris-predictor")["spec"]["ports"]
    assert ports == [{"name": "http", "port": 80, "targetPort": 9000, "protocol": "TCP"}]
    containers = containers_by_name(named(rendering, "Deployment", "iris-predictor"))
    assert containers["transformer-container"]["readinessProbe"]["tcpSocket"] == {"port": 9000}


def _memory_metric(target: dict) -> dict:
    return {"type": "Resource", "resource": {"name": "memory", "target": target}}


def test_hpa():
    hpa = named(
        render_file(SAMPLES / "autoscaling-hpa.yaml", KubeSettings()),
        "HorizontalPodAutoscaler",
        "isvc-sklearn-scale-raw-predictor",
    )
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "isvc-sklearn-scale-raw-predictor",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (4, 8)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
        }
    ]
    default = named(render_text(sklearn()), "HorizontalPodAutoscaler", "iris-predictor")
    assert default["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    assert (default["spec"]["minReplicas"], default["spec"]["maxReplicas"]) == (2, 2)
    zero = render_text(sklearn(min_replicas=0))
    assert named(zero, "HorizontalPodAutoscaler", "iris-predictor")["spec"]["minReplicas"] == 1
    assert [n.path for n in zero.notes] == ["spec.predictor.minReplicas"]


@pytest.mark.parametrize(
    "scaling",
    [
        {"scaleMetric": "cpu", "scaleMetricType": "Value", "scaleTarget": 2},
        {"autoScaling": {"metrics": [_memory_metric({"type": "Value", "value": "1Gi"})]}},
        {"autoScaling": {"metrics": [_memory_metric({"type": "AverageValue", "value": "1Gi"})]}},
    ],
    ids=["scaleMetricType", "autoScaling-value", "autoScaling-averageValue-as-value"],
)
def test_an_hpa_resource_target_is_an_average_value_never_a_value(scaling):
    """The API server refuses a resource metric with neither averageUtilization nor averageValue."""
    text = yaml.safe_dump(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "iris"},
            "spec": {"predictor": {**scaling, "sklearn": {"storageUri": "s3://models/iris"}}},
        }
    )
    hpa = named(render_text(text), "HorizontalPodAutoscaler", "iris-predictor")
    (target,) = [m["resource"]["target"] for m in hpa["spec"]["metrics"]]
    assert target == {"type": "AverageValue", "averageValue": "2" if "scaleMetric" in scaling else "1Gi"}


def test_keda_scaled_objects():
    rendering = render_file(SAMPLES / "autoscaling-keda.yaml", KubeSettings())
    assert not objects_of(rendering, "HorizontalPodAutoscaler")
    memory = named(rendering, "ScaledObject", "isvc-sklearn-keda-memory-predictor")["spec"]
    assert memory["scaleTargetRef"]["name"] == "isvc-sklearn-keda-memory-predictor"
    assert (memory["minReplicaCount"], memory["maxReplicaCount"]) == (1, 5)
    assert memory["triggers"] == [
        {"type": "memory", "metricType": "Utilization", "metadata": {"value": "50"}}
    ]
    prometheus = named(rendering, "ScaledObject", "isvc-sklearn-keda-prometheus-predictor")["spec"][
        "triggers"
    ]
    assert prometheus == [
        {
            "type": "prometheus",
            "metadata": {
                "serverAddress": "http://prometheus-operated.kserve:9090",
                "query": 'sum(rate(http_requests_total{service="isvc-sklearn-keda-prometheus-predictor"}[1m]))',
                "threshold": "50",
            },
        }
    ]
    otel = named(rendering, "ScaledObject", "isvc-sklearn-keda-otel-predictor")["spec"]["triggers"]
    assert otel == [
        {
            "type": "external",
            "metadata": {
                "scalerAddress": "keda-otel-scaler.keda.svc:4318",
                # KServe's getKedaMetrics narrows the query to the component's pods.
                "metricQuery": 'sum(process_cpu_seconds_total{namespace="default", '
                'deployment="isvc-sklearn-keda-otel-predictor"})',
                "targetValue": "8",
            },
        }
    ]


@pytest.mark.parametrize("autoscaler", ["none", "external"])
def test_no_autoscaler(autoscaler):
    rendering = render_text(sklearn(autoscaler, min_replicas=3))
    assert not objects_of(rendering, "HorizontalPodAutoscaler") and not objects_of(rendering, "ScaledObject")
    replicas = named(rendering, "Deployment", "iris-predictor")["spec"].get("replicas")
    assert replicas == (3 if autoscaler == "none" else None)


CANARY = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  annotations:
    serving.kserve.io/deploymentMode: Standard
    serving.kserve.io/autoscalerClass: none
spec:
  predictor:
    {stable_name}
    minReplicas: 4
    sklearn:
      storageUri: s3://models/iris/1
  canary:
    - trafficPercent: 25
      predictor:
        name: v2
        sklearn:
          storageUri: s3://models/iris/2
"""


def canary(stable_name: str = "") -> str:
    return CANARY.format(stable_name=f"name: {stable_name}" if stable_name else "")


def backends(route: dict) -> dict[str, int | None]:
    rule = route["spec"]["rules"][-1]
    return {ref["name"]: ref.get("weight") for ref in rule["backendRefs"]}


def test_a_canary_has_its_own_deployment_and_service_and_a_share_of_the_routes():
    rendering = render_text(canary())
    stable = named(rendering, "Deployment", "iris-predictor")
    candidate = named(rendering, "Deployment", "iris-v2-predictor")
    assert (stable["spec"]["replicas"], candidate["spec"]["replicas"]) == (3, 1)  # KServe's 4 + 25% -> 3/1
    assert named(rendering, "Service", "iris-v2-predictor")["spec"]["selector"] == {
        "app": "isvc.iris-v2-predictor"
    }
    assert candidate["metadata"]["labels"]["component"] == "predictor"
    initializer = containers_by_name(candidate)["storage-initializer"]
    assert initializer["args"][0] == "s3://models/iris/2"
    for route in ("iris", "iris-predictor"):
        assert backends(named(rendering, "HTTPRoute", route)) == {
            "iris-predictor": 75,
            "iris-v2-predictor": 25,
        }


def test_a_canary_that_is_not_ready_gets_no_traffic_and_borrows_no_replicas():
    """The operator says which canaries are ready (`isvc_objects`, as it will call it)."""
    settings = KubeSettings(default_mode=STANDARD)
    isvc = admitted([d.resource for d in load_text(canary())], settings)[0]
    objects = isvc_objects(isvc, [], with_builtin_runtimes([]), settings, ready_canaries=())
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert by_name[("Deployment", "iris-predictor")]["spec"]["replicas"] == 4
    assert backends(by_name[("HTTPRoute", "iris-predictor")]) == {"iris-predictor": None}


def test_a_named_predictor_keeps_kserves_route_and_gets_one_for_its_own_host():
    """KServe's `<isvc>-predictor` route carries the canaries' shares whatever the predictor's name; the
    named host, which the status gives as the predictor's URL, goes to the stable predictor alone, as
    its Service `<isvc>-<name>-predictor` does (and as on `modelplane up`)."""
    rendering = render_text(canary("v1"))
    assert named(rendering, "Deployment", "iris-v1-predictor")
    assert backends(named(rendering, "HTTPRoute", "iris-predictor")) == {
        "iris-v1-predictor": 75,
        "iris-v2-predictor": 25,
    }
    own = named(rendering, "HTTPRoute", "iris-v1-predictor")
    assert own["spec"]["hostnames"] == ["iris-v1-predictor-default.example.com"]
    assert backends(own) == {"iris-v1-predictor": None}
    assert own["spec"]["rules"][0]["matches"][0]["path"]["value"].startswith("^/inference")  # gRPC too
    ingress = named(render_text(canary("v1"), KubeSettings(gateway_api=False)), "Ingress", "iris")
    rules = {r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"] for r in ingress["spec"]["rules"]}
    assert rules == {
        "iris-default.example.com": "iris-v1-predictor",
        "iris-predictor-default.example.com": "iris-v1-predictor",
        "iris-v1-predictor-default.example.com": "iris-v1-predictor",
        "iris-v2-predictor-default.example.com": "iris-v2-predictor",
    }


def test_a_canary_has_a_host_of_its_own_to_it_alone():
    """Not KServe's (its canaries are reached from outside only by their share): `modelplane up` serves
    `<isvc>-<name>-predictor...` to the canary alone, and so do the cluster's routes, ready or not."""
    settings = KubeSettings(default_mode=STANDARD)
    isvc = admitted([d.resource for d in load_text(canary())], settings)[0]
    for ready in (None, ()):
        objects = isvc_objects(isvc, [], with_builtin_runtimes([]), settings, ready_canaries=ready)
        own = next(
            o for o in objects if (o["kind"], o["metadata"]["name"]) == ("HTTPRoute", "iris-v2-predictor")
        )
        assert own["spec"]["hostnames"] == ["iris-v2-predictor-default.example.com"]
        assert backends(own) == {"iris-v2-predictor": None}
    ingress = named(render_text(canary(), KubeSettings(gateway_api=False)), "Ingress", "iris")
    rules = {r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"] for r in ingress["spec"]["rules"]}
    assert rules["iris-v2-predictor-default.example.com"] == "iris-v2-predictor"
    assert rules["iris-predictor-default.example.com"] == "iris-predictor"


def test_ingress_and_entry_routes():
    transformer = SAMPLES / "transformer-raw.yaml"
    rendering = render_file(transformer, KubeSettings(gateway_api=False, ingress_class="nginx"))
    ingress = named(rendering, "Ingress", "raw-transformer")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rules = {r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"] for r in ingress["spec"]["rules"]}
    assert rules == {
        "raw-transformer-default.example.com": "raw-transformer-transformer",
        "raw-transformer-predictor-default.example.com": "raw-transformer-predictor",
        "raw-transformer-transformer-default.example.com": "raw-transformer-transformer",
    }
    routed = render_file(transformer, KubeSettings(ingress_domain="models.example.org"))
    top = named(routed, "HTTPRoute", "raw-transformer")
    assert top["spec"]["hostnames"] == ["raw-transformer-default.models.example.org"]
    assert backends(top) == {"raw-transformer-transformer": None}
    assert top["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "kserve-ingress-gateway",
            "namespace": "kserve",
        }
    ]
    rule = top["spec"]["rules"][-1]
    assert rule["filters"][0]["requestHeaderModifier"]["set"] == [
        {"name": "KServe-Isvc-Name", "value": "raw-transformer"},
        {"name": "KServe-Isvc-Namespace", "value": "default"},
    ]
    explainer = render_file(SAMPLES / "explainer-art.yaml", KubeSettings())
    rules = named(explainer, "HTTPRoute", "artserver")["spec"]["rules"]
    assert rules[0]["matches"][0]["path"]["value"] == r"^/v1/models/[\w-]+:explain$"
    assert rules[0]["backendRefs"][0]["name"] == "artserver-explainer"


def test_the_transformer_gets_kserves_arguments():
    rendering = render_file(SAMPLES / "transformer-raw.yaml", KubeSettings())
    container = containers_by_name(named(rendering, "Deployment", "raw-transformer-transformer"))[
        "kserve-container"
    ]
    assert container["args"] == [
        "--model_name",
        "mnist",
        "--predictor_host",
        "raw-transformer-predictor.default",
        "--http_port",
        "8080",
    ]
    assert container["image"] == "kserve/image-transformer:latest"
    named_predictor = render_text(
        canary("v1").replace("  canary:", "  transformer:\n    containers: [{image: example/t}]\n  canary:")
    )
    container = containers_by_name(named(named_predictor, "Deployment", "iris-transformer"))[
        "kserve-container"
    ]
    assert "iris-v1-predictor.default" in container["args"]


def test_a_custom_explainer_gets_kserves_arguments():
    """KServe's `CustomExplainer.GetContainer`: the service's name and its (named) predictor's Service,
    as a transformer gets them; an argument the container sets is kept."""
    rendering = render_text(
        """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
spec:
  predictor:
    name: blue
    sklearn: {storageUri: s3://models/iris}
  explainer:
    containerConcurrency: 2
    containers:
      - image: example/explainer
        args: [--http_port, "9000"]
"""
    )
    container = containers_by_name(named(rendering, "Deployment", "iris-explainer"))["kserve-container"]
    assert container["args"] == [
        "--http_port",
        "9000",
        "--model_name",
        "iris",
        "--predictor_host",
        "iris-blue-predictor.default",
        "--workers",
        "2",
    ]


def test_images():
    rendering = render_file(SAMPLES / "sklearn-v2-mlserver.yaml", KubeSettings(), kserve_runtimes=True)
    server = containers_by_name(named(rendering, "Deployment", "isvc-sklearn-v2-predictor"))[
        "kserve-container"
    ]
    assert server["image"] == "mlserver:replace"  # as KServe's runtime file has it
    assert env_of(server)["MLSERVER_MODEL_NAME"] == "isvc-sklearn-v2"
    assert "ports" not in server  # a stock server keeps KServe's defaults: port 8080, a TCP probe
    assert server["readinessProbe"]["tcpSocket"] == {"port": 8080}
    settings = KubeSettings(image="registry.example/mp:2.0")
    torch = render_file(SAMPLES / "transformer-raw.yaml", settings)
    server = containers_by_name(named(torch, "Deployment", "raw-transformer-predictor"))["kserve-container"]
    assert server["image"] == "registry.example/mp-full:2.0"
    assert (
        containers_by_name(named(torch, "Deployment", "raw-transformer-predictor"))["storage-initializer"][
            "image"
        ]
        == "registry.example/mp:2.0"
    )
    versioned = render_text(
        sklearn().replace(
            "storageUri: s3://models/iris", "storageUri: s3://models/iris\n      runtimeVersion: 1.9.0"
        )
    )
    assert containers_by_name(named(versioned, "Deployment", "iris-predictor"))["kserve-container"][
        "image"
    ] == ("ghcr.io/modelplane/modelplane:1.9.0")


def test_a_batcher_is_modelplane_serves_own():
    batched = render_text(
        sklearn().replace(
            "    sklearn:\n", "    batcher: {maxBatchSize: 16, maxLatency: 200}\n    sklearn:\n"
        )
    )
    args = containers_by_name(named(batched, "Deployment", "iris-predictor"))["kserve-container"]["args"]
    assert args[-4:] == ["--enable-batcher", "--max-batch-size=16", "--max-latency=200", "--host=0.0.0.0"]


def test_a_batcher_in_front_of_another_server_is_a_batcher_container():
    """KServe's sklearnserver does not batch: a `batcher` container (KServe's agent with its batcher)
    takes the Service's requests on 9081 and passes them on to the model server's port; the model
    server keeps its own readiness probe."""
    batched = render_text(
        sklearn().replace("    sklearn:\n", "    batcher: {maxBatchSize: 16, timeout: 30}\n    sklearn:\n"),
        kserve_runtimes=True,
    )
    containers = containers_by_name(named(batched, "Deployment", "iris-predictor"))
    server, batcher = containers["kserve-container"], containers["batcher"]
    assert not any(arg.startswith(("--enable-batcher", "--max-batch-size")) for arg in server["args"])
    assert server["readinessProbe"]["tcpSocket"] == {"port": 8080}
    assert batcher["image"] == "ghcr.io/modelplane/modelplane:0.1.0"
    assert batcher["args"] == [
        "batcher",
        "--port=9081",
        "--upstream=127.0.0.1:8080",
        "--max-batch-size=16",
        "--timeout=30",
    ]
    assert batcher["readinessProbe"]["tcpSocket"] == {"port": 9081}
    service = named(batched, "Service", "iris-predictor")
    assert [port["targetPort"] for port in service["spec"]["ports"]] == [9081]


def test_a_logger_and_a_batcher_chain_as_kserves_agent_does_both():
    """Logged, then batched: the logger takes the pod's requests and passes them to the batcher, which
    passes them to the model server. In Knative mode the logger is the one container with a port."""
    logged = sklearn().replace(
        "    sklearn:\n",
        "    logger: {mode: all, url: 'http://dumper.default/'}\n    batcher: {maxLatency: 50}\n    sklearn:\n",
    )
    standard = containers_by_name(
        named(render_text(logged, kserve_runtimes=True), "Deployment", "iris-predictor")
    )
    assert standard["logger"]["args"][1] == "--component-port=9082"
    assert standard["batcher"]["args"][1:3] == ["--port=9082", "--upstream=127.0.0.1:8080"]
    in_knative = logged.replace("deploymentMode: Standard", "deploymentMode: Knative").replace(
        "    serving.kserve.io/autoscalerClass: hpa\n", ""
    )
    knative = render_text(in_knative, KubeSettings(default_mode=KNATIVE), kserve_runtimes=True)
    (ksvc,) = [o for o in objects_of(knative, "Service") if o["apiVersion"] == "serving.knative.dev/v1"]
    template = ksvc["spec"]["template"]["spec"]
    server, logger, batcher = template["containers"]
    assert (logger["name"], batcher["name"]) == ("logger", "batcher")
    assert logger["ports"] == [{"containerPort": 9081, "protocol": "TCP"}]
    assert "ports" not in server and "ports" not in batcher and "readinessProbe" not in batcher
    # Each listens once the one behind it does: Knative's probe of the logger's port says all are up.
    assert "--wait-for-component" in logger["args"] and "--wait-for-upstream" in batcher["args"]


def test_a_runtime_that_cannot_be_found_is_refused():
    with pytest.raises(RenderError) as refused:
        render_text(
            sklearn().replace(
                "    sklearn:\n", "    model:\n      runtime: nowhere\n      modelFormat: {name: sklearn}\n"
            )
        )
    assert refused.value.reason == "RuntimeNotRecognized"
    assert str(refused.value) == "No ServingRuntimes or ClusterServingRuntimes with the name: nowhere"


@pytest.mark.parametrize(
    ("mode", "longest"),
    [("Standard", 45), ("Knative", 53)],  # `<name>-predictor-default` a host label; `<name>-predictor` a ksvc
)
def test_a_name_too_long_for_its_objects_is_refused_with_how_much_shorter_it_must_be(mode, longest):
    def service(name: str) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": {"name": name, "annotations": {"serving.kserve.io/deploymentMode": mode}},
                "spec": {"predictor": {"sklearn": {"storageUri": "s3://models/iris"}}},
            }
        )

    assert not [p for o in render_text(service("a" * longest)).objects for p in problems(o)]
    with pytest.raises(RenderError) as refused:
        render_text(service("a" * (longest + 1)))
    assert refused.value.path == "metadata.name"
    assert str(refused.value).endswith("over the limit of 63: the name must be 1 character shorter")


def test_a_stopped_service_has_no_objects():
    assert render_file(SAMPLES / "stopped.yaml", KubeSettings()).objects == []


def route_timeouts(route: dict) -> list:
    return [rule.get("timeouts") for rule in route["spec"]["rules"]]


def test_routes_time_out_after_60_seconds_unless_the_component_says_otherwise():
    """KServe's `resolveTimeout`: the component's `timeout`, else 60s; none at all with the ingress
    config's `disableHTTPRouteTimeout`."""
    rendering = render_text(sklearn())
    for route in ("iris", "iris-predictor"):
        assert route_timeouts(named(rendering, "HTTPRoute", route)) == [{"request": "60s"}] * 2
    timed = render_text(sklearn().replace("    minReplicas: 2\n", "    minReplicas: 2\n    timeout: 15\n"))
    assert route_timeouts(named(timed, "HTTPRoute", "iris-predictor")) == [{"request": "15s"}] * 2
    untimed = render_text(sklearn(), KubeSettings(disable_http_route_timeout=True))
    for route in ("iris", "iris-predictor"):
        assert route_timeouts(named(untimed, "HTTPRoute", route)) == [None, None]


def test_the_explain_rule_times_out_as_the_explainer_does():
    """`createRawTopLevelHTTPRoute`: the `:explain` rule takes the explainer's `timeout`, the others
    the entry component's."""
    text = (SAMPLES / "explainer-art.yaml").read_text()
    text = text.replace("  predictor:\n", "  predictor:\n    timeout: 10\n")
    text = text.replace("  explainer:\n", "  explainer:\n    timeout: 300\n")
    rules = named(render_text(text), "HTTPRoute", "artserver")["spec"]["rules"]
    timeouts = {rule["backendRefs"][0]["name"]: rule["timeouts"]["request"] for rule in rules}
    assert rules[0]["backendRefs"][0]["name"] == "artserver-explainer"
    assert timeouts == {"artserver-explainer": "300s", "artserver-predictor": "10s"}


def test_the_services_annotations_reach_its_routes():
    """Per-service Gateway and ingress-nginx policies: KServe's HTTPRoutes carry the InferenceService's
    annotations less the disallowed ones (`createRaw*HTTPRoute`), its Ingress all of them
    (`createRawIngress`)."""
    text = sklearn().replace(
        "    example.com/owner: ml\n",
        "    example.com/owner: ml\n    nginx.ingress.kubernetes.io/proxy-body-size: 64m\n",
    )
    for route in ("iris", "iris-predictor"):
        annotations = named(render_text(text), "HTTPRoute", route)["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "64m"
        assert annotations["example.com/owner"] == "ml"
        assert "autoscaling.knative.dev/min-scale" not in annotations
    ingress = named(render_text(text, KubeSettings(gateway_api=False)), "Ingress", "iris")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "64m"
    assert annotations["autoscaling.knative.dev/min-scale"] == "3"


CUSTOM_PORTS = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {{name: custom}}
spec:
  predictor:
    containers:
      - name: kserve-container
        image: example/server
        ports: {ports}
"""


def custom_service_ports(ports: str) -> list[dict]:
    return named(render_text(CUSTOM_PORTS.format(ports=ports)), "Service", "custom-predictor")["spec"][
        "ports"
    ]


def test_a_grpc_port_is_h2c_wherever_it_is_and_whatever_its_name_holds():
    """KServe's `createDefaultSvc` gives every port, the first too, `getAppProtocol`: h2c when its name
    contains grpc or h2c."""
    assert custom_service_ports("[{name: h2c, containerPort: 8081}]") == [
        {"name": "h2c", "port": 80, "targetPort": 8081, "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"}
    ]
    assert custom_service_ports(
        "[{name: rest, containerPort: 8080}, {name: my-grpc, containerPort: 9000}]"
    ) == [
        {"name": "rest", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {
            "name": "my-grpc",
            "port": 9000,
            "targetPort": 9000,
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
        },
    ]
    # Kubernetes wants every port of a Service with several named.
    assert custom_service_ports("[{containerPort: 8080}, {containerPort: 9000}]") == [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "port-9000", "port": 9000, "targetPort": 9000, "protocol": "TCP"},
    ]


def test_routes_send_grpc_and_rest_to_the_ports_that_speak_them():
    """KServe's `detectServiceProtocolPorts`: the Service's first gRPC and first REST ports, wherever
    they are in its list."""
    text = CUSTOM_PORTS.format(ports="[{name: grpc, containerPort: 8081}, {name: http, containerPort: 8080}]")
    rules = named(render_text(text), "HTTPRoute", "custom-predictor")["spec"]["rules"]
    assert [(r["matches"][0]["path"]["value"], r["backendRefs"][0]["port"]) for r in rules] == [
        (r"^/inference\.GRPCInferenceService/.*$", 80),
        ("^/.*$", 8080),
    ]


KEDA_AUTH = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: kp
  namespace: ns1
  annotations:
    serving.kserve.io/autoscalerClass: {autoscaler}
    autoscaling.keda.sh/paused-replicas: "0"
spec:
  predictor:
    annotations: {{example.com/component: predictor}}
    autoScaling:
      metrics:
        - type: External
          external:
            metric: {{backend: prometheus, serverAddress: "http://prom:9090", query: up}}
            authenticationRef:
              authModes: bearer
              authenticationRef: {{name: keda-prom-auth}}
            target: {{type: Value, value: "1"}}
    sklearn:
      storageUri: s3://models/iris
"""


def test_a_scaled_object_has_the_components_annotations_and_its_triggers_auth_modes():
    """`createKedaScaledObject` writes the component's metadata (so KEDA's own annotations, such as
    `paused-replicas`, reach it) and `getKedaMetrics` an External metric's `authModes`."""
    scaled = named(render_text(KEDA_AUTH.format(autoscaler="keda")), "ScaledObject", "kp-predictor")
    annotations = scaled["metadata"]["annotations"]
    assert annotations["autoscaling.keda.sh/paused-replicas"] == "0"
    assert annotations["example.com/component"] == "predictor"
    assert scaled["spec"]["triggers"] == [
        {
            "type": "prometheus",
            "metadata": {
                "serverAddress": "http://prom:9090",
                "query": "up",
                "threshold": "1",
                "authModes": "bearer",
            },
            "authenticationRef": {"name": "keda-prom-auth"},
        }
    ]


def test_an_hpa_has_the_components_annotations():
    """`createHPA` writes the component's metadata, annotations too."""
    text = (
        KEDA_AUTH.format(autoscaler="hpa").split("    autoScaling:")[0]
        + "    sklearn:\n      storageUri: s3://models/iris\n"
    )
    hpa = named(render_text(text), "HorizontalPodAutoscaler", "kp-predictor")
    assert hpa["metadata"]["annotations"]["example.com/component"] == "predictor"


def test_a_graphite_triggers_namespace_is_noted_not_passed_on():
    service = yaml.safe_load(sklearn("keda"))
    service["spec"]["predictor"]["autoScaling"] = {
        "metrics": [
            {
                "type": "External",
                "external": {
                    "metric": {
                        "backend": "graphite",
                        "serverAddress": "http://graphite:8080",
                        "query": "requests",
                        "namespace": "monitoring",
                    },
                    "target": {"type": "Value", "value": "10"},
                },
            }
        ]
    }
    rendering = render_text(yaml.safe_dump(service))
    (trigger,) = named(rendering, "ScaledObject", "iris-predictor")["spec"]["triggers"]
    assert "namespace" not in trigger["metadata"]
    assert [n.path for n in rendering.notes] == [
        "spec.predictor.autoScaling.metrics[0].external.metric.namespace"
    ]


def test_a_service_that_asks_to_be_scraped_gets_prometheus_pod_annotations():
    """KServe's pod webhook writes them; the model server's port and path, where its metrics are (the
    runtime's prometheus.kserve.io annotations), on the pod template alone."""
    scraped = sklearn().replace(
        "    example.com/owner: ml\n",
        '    example.com/owner: ml\n    serving.kserve.io/enable-prometheus-scraping: "true"\n',
    )
    for settings in (None, KubeSettings(default_mode="Knative")):
        text = (
            scraped
            if settings is None
            else scraped.replace("deploymentMode: Standard", "deploymentMode: Serverless")
        )
        workload = next(
            o
            for o in render_text(text, settings).objects
            if o["kind"] in ("Deployment", "Service") and "template" in o["spec"]
        )
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"]) == ("true", "8080")
        assert annotations["prometheus.io/path"] == "/metrics"
        assert "prometheus.io/port" not in workload["metadata"].get("annotations", {})
    plain = named(render_text(sklearn()), "Deployment", "iris-predictor")
    assert "prometheus.io/scrape" not in plain["spec"]["template"]["metadata"]["annotations"]


LIMIT_BELOW_THE_RUNTIMES_REQUEST = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: small}
spec:
  predictor:
    sklearn:
      storageUri: gs://models/iris
      resources: {limits: {memory: 512Mi}}
"""


@pytest.mark.parametrize("mode", ["Standard", "Knative"])
def test_a_limit_below_the_request_it_is_merged_with_is_refused_with_why(mode):
    """The runtime requests 2Gi; a limit of 512Mi alone leaves the request over it, a pod the API server
    refuses (in KServe too, as its Deployment is created): refused at once, with what to set."""
    with pytest.raises(RenderError) as refused:
        render_text(LIMIT_BELOW_THE_RUNTIMES_REQUEST, KubeSettings(default_mode=mode))
    assert (refused.value.reason, refused.value.path) == ("InvalidPredictorSpec", "spec.predictor")
    assert "kserve-container container would request 2Gi of memory, over its limit of 512Mi" in str(
        refused.value
    )
    both = LIMIT_BELOW_THE_RUNTIMES_REQUEST.replace("{limits:", "{requests: {memory: 256Mi}, limits:")
    rendering = render_text(both, KubeSettings(default_mode=mode))
    assert not [p for o in rendering.objects for p in problems(o)]


PLACEHOLDER_RUNTIME = """\
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata: {name: templated, namespace: models}
spec:
  supportedModelFormats: [{name: sklearn, version: "1"}]
  containers:
    - {name: kserve-container, image: example/server, args: ["--model_name={{.Name}}"]}
    - {name: transformer-container, image: example/t, args: ["--model_name={{.Name}}"]}
    - {name: agent, image: example/agent, args: ["--for={{.Name}}"]}
"""


def test_placeholders_are_filled_in_the_model_and_transformer_containers_alone_as_kserve_does():
    """KServe's controller renders the `kserve-container` and the `transformer-container` (the runtime's
    merged with the service's); a runtime's other containers, and the service's, go in as written."""
    service = sklearn().replace(
        "    sklearn:\n      storageUri: s3://models/iris\n",
        "    containers:\n"
        "      - name: transformer-container\n"
        "        env: [{name: FOR, value: '{{.Namespace}}'}]\n"
        "      - {name: helper, image: example/h, args: ['--for={{.Name}}']}\n"
        "    model:\n      runtime: templated\n      modelFormat: {name: sklearn}\n"
        "      storageUri: s3://models/iris\n",
    )
    rendering = render_text(service + "---\n" + PLACEHOLDER_RUNTIME)
    containers = containers_by_name(named(rendering, "Deployment", "iris-predictor"))
    assert containers["kserve-container"]["args"][0] == "--model_name=iris"
    assert containers["transformer-container"]["args"] == ["--model_name=iris"]
    assert env_of(containers["transformer-container"])["FOR"] == "models"
    assert containers["agent"]["args"] == ["--for={{.Name}}"]
    assert containers["helper"]["args"] == ["--for={{.Name}}"]


def test_a_placeholder_the_transformer_container_cannot_fill_is_refused_as_kserve_words_it():
    runtime = PLACEHOLDER_RUNTIME.replace(
        '["--model_name={{.Name}}"]}\n    - {name: agent', '["{{.Nope}}"]}\n    - {name: agent'
    )
    service = sklearn().replace(
        "    sklearn:\n", "    model:\n      runtime: templated\n      modelFormat: {name: sklearn}\n"
    )
    with pytest.raises(RenderError) as refused:
        render_text(service + "---\n" + runtime)
    assert str(refused.value).startswith(
        "failed to replace placeholders in serving runtime templated Container transformer-container"
    )
