"""The operator as a process, through lightkube over HTTP, against the test API server (or the cluster
of $KUBECONFIG): what it makes for a resource, how it follows changes and deletions, and the status it
writes from what the cluster reports."""

from __future__ import annotations

import json
import time

import pytest
from lightkube.types import PatchType

from modelplane.kube.operator import resources as r

from .kubelet import (
    accept_routes,
    crash_looping,
    deployment_available,
    deployment_unavailable,
    fetch_failed,
    image_pull_failing,
    knative_not_routed,
    knative_ready,
    running,
    start_pod,
)
from .operator_env import REAL_CLUSTER, KubeCluster, Operator, wait_for

CONFIG_MAP = r.CONFIG_MAPS
DEPLOYMENT = r.DEPLOYMENTS
GRAPH = r.INFERENCE_GRAPHS
HPA = r.HPAS
ISVC = r.INFERENCE_SERVICES
KSVC = r.KNATIVE_SERVICES
POD = r.PODS
ROUTE = r.HTTP_ROUTES
SERVICE = r.SERVICES
TRAINED_MODEL = r.TRAINED_MODELS

simulated = pytest.mark.skipif(REAL_CLUSTER, reason="writes the statuses kubelet and the controllers write")


@pytest.fixture
def cluster(tmp_path):
    found = KubeCluster(tmp_path)
    yield found
    found.close()


@pytest.fixture
def operator(cluster):
    process = Operator(cluster, "solo")
    yield process
    process.stop()


def iris(name: str = "iris", storage: str = "gs://kfserving-examples/models/sklearn/1.0/model") -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": storage}}},
    }


def get(cluster: KubeCluster, resource: type, name: str) -> dict | None:
    from lightkube import ApiError

    try:
        return dict(cluster.client.get(resource, name, namespace=cluster.namespace))
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise


def condition(obj: dict | None, kind: str) -> dict:
    return next(
        (c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c["type"] == kind), {}
    )


def test_a_new_service_gets_its_objects_owned_and_finalized(cluster, operator):
    created = dict(cluster.client.create(ISVC(iris())))
    deployment = wait_for(lambda: get(cluster, DEPLOYMENT, "iris-predictor"), message="the Deployment")
    for resource in (SERVICE, HPA, ROUTE):
        wait_for(
            lambda resource=resource: get(cluster, resource, "iris-predictor"), message=resource.__name__
        )
    wait_for(lambda: get(cluster, ROUTE, "iris"))
    owner = deployment["metadata"]["ownerReferences"][0]
    assert owner["uid"] == created["metadata"]["uid"] and owner["controller"] is True
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "kserve-container"
    isvc = wait_for(lambda: (i := get(cluster, ISVC, "iris")).get("status") and i, message="a status")
    assert "inferenceservice.finalizers" in isvc["metadata"]["finalizers"]
    assert isvc["status"]["deploymentMode"] == "Standard"
    assert condition(isvc, "Ready")["status"] != "True"


def status_of(cluster, name: str = "iris") -> dict:
    return (get(cluster, ISVC, name) or {}).get("status") or {}


@simulated
def test_a_service_is_ready_once_its_deployment_is_available_and_its_routes_accepted(cluster, operator):
    cluster.client.create(ISVC(iris()))
    wait_for(lambda: get(cluster, DEPLOYMENT, "iris-predictor"))
    start_pod(cluster.client, "iris-predictor", cluster.namespace, [running()], ready=True)
    deployment_available(cluster.client, "iris-predictor", cluster.namespace)
    wait_for(lambda: condition(get(cluster, ISVC, "iris"), "PredictorReady").get("status") == "True")
    assert (
        condition(get(cluster, ISVC, "iris"), "IngressReady")["status"] == "False"
    )  # no gateway took the routes yet
    wait_for(lambda: get(cluster, ROUTE, "iris") and get(cluster, ROUTE, "iris-predictor"))
    accept_routes(cluster.client, cluster.namespace)
    wait_for(lambda: condition(get(cluster, ISVC, "iris"), "Ready").get("status") == "True", message="Ready")
    status = status_of(cluster)
    assert status["url"] == "http://iris-default.example.com"
    assert status["address"]["url"] == "http://iris-predictor.default.svc.cluster.local"
    assert status["components"]["predictor"]["url"] == "http://iris-predictor-default.example.com"
    assert status["modelStatus"]["transitionStatus"] == "UpToDate"
    assert status["modelStatus"]["states"] == {"activeModelState": "Loaded"}
    assert status["modelStatus"]["copies"]["totalCopies"] == 1
    assert status["clusterServingRuntimeName"] == "kserve-sklearnserver"


@simulated
def test_a_crash_looping_runtime_is_said_with_its_exit_code(cluster, operator):
    cluster.client.create(ISVC(iris()))
    wait_for(lambda: get(cluster, DEPLOYMENT, "iris-predictor"))
    pod = start_pod(
        cluster.client,
        "iris-predictor",
        cluster.namespace,
        [crash_looping("kserve-container", 3, "ValueError: the model file is not a model")],
    )
    deployment_unavailable(cluster.client, "iris-predictor", cluster.namespace)
    wait_for(
        lambda: status_of(cluster).get("modelStatus", {}).get("transitionStatus") == "BlockedByFailedLoad"
    )
    status = status_of(cluster)
    failure = status["modelStatus"]["lastFailureInfo"]
    assert failure["reason"] == "ModelLoadFailed" and failure["exitCode"] == 3
    assert failure["location"] == pod and failure["time"]
    assert "the model file is not a model" in failure["message"]
    predictor = condition({"status": status}, "PredictorReady")
    assert predictor["status"] == "False" and "the model file is not a model" in predictor["message"]
    assert condition({"status": status}, "Ready")["status"] == "False"


@simulated
def test_an_unreachable_storage_uri_is_said(cluster, operator):
    cluster.client.create(ISVC(iris(storage="s3://no-such-bucket/model")))
    wait_for(lambda: get(cluster, DEPLOYMENT, "iris-predictor"))
    start_pod(
        cluster.client,
        "iris-predictor",
        cluster.namespace,
        [],
        init=[fetch_failed("s3://no-such-bucket/model: the bucket does not exist")],
    )
    wait_for(lambda: "lastFailureInfo" in status_of(cluster).get("modelStatus", {}))
    failure = status_of(cluster)["modelStatus"]["lastFailureInfo"]
    assert failure["reason"] == "ModelLoadFailed"
    assert "the storage initializer failed to fetch the model" in failure["message"]
    assert "the bucket does not exist" in failure["message"]


def test_the_storage_initializer_gets_its_service_accounts_credentials(cluster, operator):
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s3creds",
            "annotations": {"serving.kserve.io/s3-endpoint": "https://minio.test"},
        },
        "data": {"AWS_ACCESS_KEY_ID": "aWQ=", "AWS_SECRET_ACCESS_KEY": "a2V5"},  # base64 of id, key
    }
    hdfs = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hdfscreds"},
        "data": {"HDFS_NAMENODE": "bm4="},
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "models"}}
    cluster.client.create(r.SECRETS(secret))
    cluster.client.create(r.SECRETS(hdfs))
    secrets = [{"name": "s3creds"}, {"name": "hdfscreds"}]
    cluster.client.create(r.SERVICE_ACCOUNTS({**account, "secrets": secrets}))
    isvc = iris(storage="s3://models/iris")
    isvc["spec"]["predictor"]["serviceAccountName"] = "models"
    cluster.client.create(ISVC(isvc))
    deployment = wait_for(lambda: get(cluster, DEPLOYMENT, "iris-predictor"), message="the Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "models"
    env = {e["name"]: e for e in pod["initContainers"][0].get("env", [])}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "s3creds", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    assert env["AWS_ENDPOINT_URL"]["value"] == "https://minio.test"
    # What the account gives that the pods leave out is said in the status, as `render` says it.
    honored = wait_for(lambda: condition(get(cluster, ISVC, "iris"), "FieldsHonored"))
    assert honored["status"] == "False"
    assert "spec.predictor.serviceAccountName: secret hdfscreds is for HDFS" in honored["message"]
    # An account that does not exist keeps the service from running, as Kubernetes would its pods.
    missing = iris("other", storage="s3://models/iris")
    missing["spec"]["predictor"]["serviceAccountName"] = "nobody"
    cluster.client.create(ISVC(missing))
    wait_for(lambda: "lastFailureInfo" in status_of(cluster, "other").get("modelStatus", {}))
    failure = status_of(cluster, "other")["modelStatus"]["lastFailureInfo"]
    assert 'serviceaccount "nobody" not found' in failure["message"], failure
    assert get(cluster, DEPLOYMENT, "other-predictor") is None
    # The operator watches ServiceAccounts: applying it renders the service at once (not at a resync).
    time.sleep(2)  # the reconcile its own status write causes is over
    cluster.client.create(r.SERVICE_ACCOUNTS({**account, "metadata": {"name": "nobody"}}))
    wait_for(
        lambda: get(cluster, DEPLOYMENT, "other-predictor"),
        timeout=20,
        message="the Deployment, once the account is there",
    )


@simulated
def test_an_image_that_cannot_be_pulled_is_said(cluster, operator):
    cluster.client.create(ISVC(iris()))
    wait_for(lambda: get(cluster, DEPLOYMENT, "iris-predictor"))
    start_pod(
        cluster.client,
        "iris-predictor",
        cluster.namespace,
        [image_pull_failing("kserve-container", "example.com/nope:1")],
    )
    wait_for(lambda: "lastFailureInfo" in status_of(cluster).get("modelStatus", {}))
    failure = status_of(cluster)["modelStatus"]["lastFailureInfo"]
    assert failure["reason"] == "RuntimeUnhealthy"
    assert "example.com/nope:1" in failure["message"] and "ImagePullBackOff" in failure["message"]


def test_a_model_no_runtime_serves_is_said_and_makes_nothing(cluster, operator):
    isvc = iris()
    isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] = "nosuchformat"
    cluster.client.create(ISVC(isvc))
    wait_for(lambda: status_of(cluster).get("modelStatus", {}).get("transitionStatus") == "InvalidSpec")
    failure = status_of(cluster)["modelStatus"]["lastFailureInfo"]
    assert failure["reason"] == "NoSupportingRuntime" and "nosuchformat" in failure["message"]
    assert get(cluster, DEPLOYMENT, "iris-predictor") is None


def test_a_name_too_long_for_its_objects_is_said_and_makes_nothing(cluster, operator):
    """`app: isvc.<name>` would be over Kubernetes' 63 characters: the API server would refuse the
    objects one by one, so the service and the graph are refused with the reason instead."""
    name = "a" * 60
    cluster.client.create(ISVC(iris(name)))
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name},
        "spec": {"nodes": {"root": {"routerType": "Sequence", "steps": [{"serviceUrl": "http://a/v1"}]}}},
    }
    cluster.client.create(GRAPH(graph))
    wait_for(lambda: status_of(cluster, name).get("modelStatus", {}).get("transitionStatus") == "InvalidSpec")
    failure = status_of(cluster, name)["modelStatus"]["lastFailureInfo"]
    assert failure["reason"] == "InvalidPredictorSpec" and "shorter" in failure["message"]
    graph_status = wait_for(lambda: (get(cluster, GRAPH, name) or {}).get("status"))
    assert "shorter" in condition({"status": graph_status}, "Ready")["message"]
    assert get(cluster, DEPLOYMENT, f"{name}-predictor") is None and get(cluster, DEPLOYMENT, name) is None


def test_a_changed_spec_updates_the_deployment_and_a_deleted_service_takes_its_objects(cluster, operator):
    cluster.client.create(ISVC(iris()))
    first = wait_for(lambda: get(cluster, DEPLOYMENT, "iris-predictor"))
    patch = {
        "spec": {"predictor": {"model": {"storageUri": "gs://kfserving-examples/models/sklearn/2.0/model"}}}
    }
    cluster.client.patch(ISVC, "iris", patch, namespace=cluster.namespace, patch_type=PatchType.MERGE)
    changed = wait_for(
        lambda: (
            (d := get(cluster, DEPLOYMENT, "iris-predictor"))["metadata"]["generation"]
            > first["metadata"]["generation"]
            and d
        )
    )
    assert "sklearn/2.0/model" in str(changed["spec"]["template"]["spec"]["initContainers"])
    assert changed["metadata"]["uid"] == first["metadata"]["uid"]  # the same Deployment rolls
    if not REAL_CLUSTER:
        start_pod(cluster.client, "iris-predictor", cluster.namespace, [running()], ready=True)
    cluster.client.delete(ISVC, "iris", namespace=cluster.namespace)
    wait_for(lambda: get(cluster, ISVC, "iris") is None, message="the finalizer taken off")
    for resource, name in (
        (DEPLOYMENT, "iris-predictor"),
        (SERVICE, "iris-predictor"),
        (HPA, "iris-predictor"),
        (ROUTE, "iris"),
        (ROUTE, "iris-predictor"),
    ):
        wait_for(
            lambda resource=resource, name=name: get(cluster, resource, name) is None,
            message=f"{name} collected",
        )
    assert list(cluster.client.list(POD, namespace=cluster.namespace)) == []


def _weights(route: dict) -> dict[str, int]:
    rule = route["spec"]["rules"][-1]
    return {ref["name"]: ref.get("weight", 1) for ref in rule["backendRefs"]}


@simulated
def test_a_canary_gets_its_share_once_ready_and_promotion_removes_the_old_predictor(cluster, operator):
    cluster.client.create(ISVC(iris()))
    wait_for(lambda: get(cluster, DEPLOYMENT, "iris-predictor"))
    deployment_available(cluster.client, "iris-predictor", cluster.namespace)
    v2 = {
        "name": "v2",
        "model": {
            "modelFormat": {"name": "sklearn"},
            "storageUri": "gs://kfserving-examples/models/sklearn/2.0/model",
        },
    }
    patch = {"spec": {"canary": [{"trafficPercent": 20, "predictor": v2}]}}
    cluster.client.patch(ISVC, "iris", patch, namespace=cluster.namespace, patch_type=PatchType.MERGE)
    wait_for(lambda: get(cluster, DEPLOYMENT, "iris-v2-predictor"), message="the canary's Deployment")
    wait_for(lambda: get(cluster, SERVICE, "iris-v2-predictor"), message="the canary's Service")
    assert set(_weights(get(cluster, ROUTE, "iris-predictor"))) == {"iris-predictor"}  # not ready: no share
    own = wait_for(lambda: get(cluster, ROUTE, "iris-v2-predictor"), message="the canary's own HTTPRoute")
    assert own["spec"]["hostnames"] == ["iris-v2-predictor-default.example.com"]
    assert set(_weights(own)) == {"iris-v2-predictor"}  # its own host reaches it, ready or not
    start_pod(cluster.client, "iris-v2-predictor", cluster.namespace, [running()], ready=True)
    deployment_available(cluster.client, "iris-v2-predictor", cluster.namespace)
    wait_for(
        lambda: (
            _weights(get(cluster, ROUTE, "iris-predictor")) == {"iris-predictor": 80, "iris-v2-predictor": 20}
        )
    )
    wait_for(
        lambda: (
            status_of(cluster).get("canaryStatuses") == [{"name": "v2", "ready": True, "trafficPercent": 20}]
        )
    )
    assert condition(get(cluster, ISVC, "iris"), "CanaryPredictorReady")["status"] == "True"
    promote = {"spec": {"predictor": v2, "canary": None}}
    cluster.client.patch(ISVC, "iris", promote, namespace=cluster.namespace, patch_type=PatchType.MERGE)
    wait_for(lambda: get(cluster, DEPLOYMENT, "iris-predictor") is None, message="the old predictor deleted")
    wait_for(lambda: get(cluster, SERVICE, "iris-predictor") is None, message="its Service deleted")
    wait_for(lambda: set(_weights(get(cluster, ROUTE, "iris-predictor"))) == {"iris-v2-predictor"})
    assert get(cluster, DEPLOYMENT, "iris-v2-predictor") is not None
    assert set(_weights(get(cluster, ROUTE, "iris-v2-predictor"))) == {"iris-v2-predictor"}  # its host stays


def _hostnames(cluster) -> set[str]:
    routes = cluster.client.list(ROUTE, namespace=cluster.namespace)
    return {hostname for route in routes for hostname in dict(route)["spec"]["hostnames"]}


@simulated
def test_a_named_predictor_answers_on_the_url_its_status_gives(cluster, operator):
    named = iris()
    named["spec"]["predictor"]["name"] = "blue"
    cluster.client.create(ISVC(named))
    wait_for(lambda: get(cluster, DEPLOYMENT, "iris-blue-predictor"), message="the Deployment")
    wait_for(lambda: get(cluster, SERVICE, "iris-blue-predictor"), message="the Service")
    start_pod(cluster.client, "iris-blue-predictor", cluster.namespace, [running()], ready=True)
    deployment_available(cluster.client, "iris-blue-predictor", cluster.namespace)
    wait_for(lambda: get(cluster, ROUTE, "iris-blue-predictor"), message="the named host's HTTPRoute")
    accept_routes(cluster.client, cluster.namespace)
    wait_for(lambda: condition(get(cluster, ISVC, "iris"), "Ready").get("status") == "True", message="Ready")
    predictor = status_of(cluster)["components"]["predictor"]
    assert predictor["url"] == "http://iris-blue-predictor-default.example.com"
    assert _hostnames(cluster) == {
        "iris-default.example.com",
        "iris-predictor-default.example.com",
        "iris-blue-predictor-default.example.com",
    }
    model = {"storageUri": "gs://kfserving-examples/models/sklearn/2.0/model"}  # a rename is a new model
    unnamed = {"spec": {"predictor": {"name": None, "model": model}}}
    cluster.client.patch(ISVC, "iris", unnamed, namespace=cluster.namespace, patch_type=PatchType.MERGE)
    wait_for(lambda: get(cluster, ROUTE, "iris-blue-predictor") is None, message="its route deleted")


def knative_iris_served(cluster) -> None:
    """`iris` in Knative mode, whose Knative Service Knative reports ready with its first revision."""
    isvc = iris()
    isvc["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "Knative"}
    cluster.client.create(ISVC(isvc))
    wait_for(lambda: get(cluster, KSVC, "iris-predictor"), message="the Knative Service")
    first = [{"revisionName": "iris-predictor-00001", "latestRevision": True, "percent": 100}]
    knative_ready(cluster.client, "iris-predictor", cluster.namespace, "iris-predictor-00001", first)


@simulated
def test_knative_mode_follows_the_knative_service_and_splits_a_canary(cluster, operator):
    knative_iris_served(cluster)
    wait_for(lambda: condition(get(cluster, ISVC, "iris"), "Ready").get("status") == "True", message="Ready")
    status = status_of(cluster)
    assert status["deploymentMode"] == "Knative"
    assert status["url"] == "http://iris-predictor.default.example.com"
    assert status["components"]["predictor"]["latestRolledoutRevision"] == "iris-predictor-00001"
    patch = {
        "spec": {
            "predictor": {
                "canaryTrafficPercent": 10,
                "model": {"storageUri": "gs://kfserving-examples/models/sklearn/2.0/model"},
            }
        }
    }
    cluster.client.patch(ISVC, "iris", patch, namespace=cluster.namespace, patch_type=PatchType.MERGE)
    ksvc = wait_for(
        lambda: (k := get(cluster, KSVC, "iris-predictor"))["spec"]["traffic"][0]["percent"] == 10 and k
    )
    assert ksvc["spec"]["traffic"][1] == {
        "revisionName": "iris-predictor-00001",
        "latestRevision": False,
        "percent": 90,
        "tag": "prev",
    }
    split = [
        {"revisionName": "iris-predictor-00002", "latestRevision": True, "percent": 10},
        {"revisionName": "iris-predictor-00001", "latestRevision": False, "percent": 90, "tag": "prev"},
    ]
    knative_ready(cluster.client, "iris-predictor", cluster.namespace, "iris-predictor-00002", split)
    wait_for(
        lambda: status_of(cluster)["components"]["predictor"]["latestReadyRevision"] == "iris-predictor-00002"
    )
    predictor = status_of(cluster)["components"]["predictor"]
    assert [(t["revisionName"], t["percent"]) for t in predictor["traffic"]] == [
        ("iris-predictor-00002", 10),
        ("iris-predictor-00001", 90),
    ]
    assert predictor["traffic"][1]["url"] == "http://prev-iris-predictor.default.example.com"
    assert predictor["latestRolledoutRevision"] == "iris-predictor-00001"


@simulated
def test_a_named_knative_predictor_has_the_urls_of_its_knative_service(cluster, operator):
    """KServe's Knative Service `<isvc>-<name>-predictor`: its status's URLs and tagged hosts are those
    Knative serves for that Knative Service."""
    isvc = iris()
    isvc["metadata"]["annotations"] = {
        "serving.kserve.io/deploymentMode": "Knative",
        "serving.kserve.io/enable-tag-routing": "true",
    }
    isvc["spec"]["predictor"]["name"] = "blue"
    cluster.client.create(ISVC(isvc))
    ksvc = wait_for(lambda: get(cluster, KSVC, "iris-blue-predictor"), message="the Knative Service")
    assert ksvc["spec"]["traffic"] == [{"latestRevision": True, "percent": 100, "tag": "latest"}]
    revision = "iris-blue-predictor-00001"
    served = [{"revisionName": revision, "latestRevision": True, "percent": 100, "tag": "latest"}]
    knative_ready(cluster.client, "iris-blue-predictor", cluster.namespace, revision, served)
    wait_for(lambda: condition(get(cluster, ISVC, "iris"), "Ready").get("status") == "True", message="Ready")
    status = status_of(cluster)
    assert status["url"] == "http://iris-blue-predictor.default.example.com"
    predictor = status["components"]["predictor"]
    assert predictor["url"] == "http://iris-blue-predictor.default.example.com"
    assert predictor["address"] == {"url": "http://iris-blue-predictor.default.svc.cluster.local"}
    assert predictor["traffic"][0]["url"] == "http://latest-iris-blue-predictor.default.example.com"
    assert get(cluster, KSVC, "iris-predictor") is None


@simulated
def test_a_knative_graph_has_its_knative_services_conditions_as_kserve_copies_them(cluster, operator):
    knative_iris_served(cluster)
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "pipeline", "annotations": {"serving.kserve.io/deploymentMode": "Knative"}},
        "spec": {
            "nodes": {"root": {"routerType": "Sequence", "steps": [{"serviceName": "iris", "name": "iris"}]}}
        },
    }
    cluster.client.create(GRAPH(graph))
    wait_for(lambda: get(cluster, KSVC, "pipeline"), message="the graph's Knative Service")
    knative_not_routed(cluster.client, "pipeline", cluster.namespace, "pipeline-00001")

    def conditions() -> list[dict]:
        return ((get(cluster, GRAPH, "pipeline") or {}).get("status") or {}).get("conditions") or []

    def types() -> list[str]:
        return [c["type"] for c in conditions()]

    wait_for(lambda: "RoutesReady" in types(), message="Knative's conditions on the graph")
    assert types() == ["ConfigurationsReady", "Ready", "RoutesReady", "Stopped"]
    by_type = {c["type"]: c for c in conditions()}
    assert by_type["ConfigurationsReady"]["status"] == "True"
    assert by_type["RoutesReady"]["status"] == "Unknown"
    assert by_type["RoutesReady"]["reason"] == "IngressNotConfigured"  # Knative's own words
    assert by_type["Ready"]["status"] != "True"
    routed = [{"revisionName": "pipeline-00001", "latestRevision": True, "percent": 100}]
    knative_ready(cluster.client, "pipeline", cluster.namespace, "pipeline-00001", routed)
    wait_for(lambda: condition(get(cluster, GRAPH, "pipeline"), "Ready").get("status") == "True")
    assert {c["type"]: c["status"] for c in conditions()} == {
        "ConfigurationsReady": "True",
        "Ready": "True",
        "RoutesReady": "True",
        "Stopped": "False",
    }
    assert get(cluster, GRAPH, "pipeline")["status"]["url"] == "http://pipeline.default.example.com"


def test_trained_models_are_listed_in_their_services_model_config(cluster, operator):
    mms = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "mms"},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    # a limit below the runtime's request of 2Gi needs a request of its own
                    "resources": {"requests": {"memory": "512Mi"}, "limits": {"memory": "1Gi"}},
                }
            }
        },
    }
    cluster.client.create(ISVC(mms))

    def trained(name: str, memory: str, parent: str = "mms") -> dict:
        model = {"storageUri": f"gs://models/{name}", "framework": "sklearn", "memory": memory}
        return {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "TrainedModel", "metadata": {"name": name},
                "spec": {"inferenceService": parent, "model": model}}  # fmt: skip

    def listed() -> list[str]:
        config = get(cluster, CONFIG_MAP, "modelconfig-mms-0") or {"data": {"models.json": "[]"}}
        return [m["modelName"] for m in json.loads(config["data"]["models.json"])]

    wait_for(lambda: get(cluster, CONFIG_MAP, "modelconfig-mms-0"), message="the model ConfigMap")
    cluster.client.create(TRAINED_MODEL(trained("first", "600Mi")))
    cluster.client.create(TRAINED_MODEL(trained("second", "600Mi")))  # does not fit next to the first
    wait_for(lambda: listed() == ["first"], message="the first model listed")
    second = wait_for(
        lambda: (
            condition(get(cluster, TRAINED_MODEL, "second"), "MemoryResourceAvailable").get("status")
            == "False"
            and get(cluster, TRAINED_MODEL, "second")
        )
    )
    assert second["metadata"]["labels"]["inferenceservice"] == "mms"
    first = get(cluster, TRAINED_MODEL, "first")
    assert "trainedmodel.finalizer" in first["metadata"]["finalizers"]
    assert first["metadata"]["labels"]["serving.kserve.io/trainedmodel-allocated"] == "mms"
    cluster.client.delete(TRAINED_MODEL, "first", namespace=cluster.namespace)
    wait_for(
        lambda: get(cluster, TRAINED_MODEL, "first") is None, message="the first model's finalizer taken off"
    )
    wait_for(lambda: listed() == ["second"], message="the second model listed once there is room")
    cluster.client.create(TRAINED_MODEL(trained("orphan", "1Mi", parent="nosuchservice")))
    wait_for(lambda: get(cluster, TRAINED_MODEL, "orphan") is None, message="a model of no service deleted")


def test_a_graph_gets_a_router_that_calls_its_services_in_the_cluster(cluster, operator):
    cluster.client.create(ISVC(iris()))
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "pipeline"},
        "spec": {
            "nodes": {"root": {"routerType": "Sequence", "steps": [{"serviceName": "iris", "name": "iris"}]}}
        },
    }
    cluster.client.create(GRAPH(graph))
    router = wait_for(lambda: get(cluster, DEPLOYMENT, "pipeline"), message="the router's Deployment")
    args = router["spec"]["template"]["spec"]["containers"][0]["args"]
    assert (
        "http://iris-predictor.default.svc.cluster.local/v1/models/iris:predict"
        in args[args.index("--graph-json") + 1]
    )
    status = wait_for(lambda: (get(cluster, GRAPH, "pipeline") or {}).get("status"))
    assert condition({"status": status}, "Ready")["status"] == "False"
    assert "iris" in condition({"status": status}, "Ready")["message"]  # waits for its service
