"""TrainedModels on a cluster, from the operator to the model server: the operator lists them in the
model ConfigMap, the test plays kubelet (the ConfigMap as a volume, updated as kubelet updates one; the
predictor pod's agent containers run as rendered, their mounts on local folders, next to a real
`modelplane serve --multi-model`), and the operator's TrainedModel Ready, which asks the pod, turns True
once the agent has loaded the model; a deleted TrainedModel is unloaded."""

from __future__ import annotations

import copy

import httpx
import pytest

from modelplane.kube.operator import resources as r
from tests.agent.helpers import AgentProcess, ConfigMapVolume, write_iris_models
from tests.server.processes import serve
from tests.storage.servers import start_http

from .kubelet import accept_routes, deployment_available, running, start_pod
from .operator_env import REAL_CLUSTER, KubeCluster, Operator, wait_for
from .test_operator import condition, get

pytestmark = pytest.mark.skipif(REAL_CLUSTER, reason="plays kubelet, and runs the pod's containers here")

CONFIG_MAP, DEPLOYMENT, ISVC, TRAINED_MODEL = (
    r.CONFIG_MAPS,
    r.DEPLOYMENTS,
    r.INFERENCE_SERVICES,
    r.TRAINED_MODELS,
)


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


@pytest.fixture
def bucket(tmp_path):
    write_iris_models(tmp_path / "bucket")
    server = start_http(tmp_path / "bucket")
    yield server.url
    server.stop()


def trained_model(name: str, uri: str) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "TrainedModel",
        "metadata": {"name": name},
        "spec": {
            "inferenceService": "mms",
            "model": {"storageUri": uri, "framework": "sklearn", "memory": "64Mi"},
        },
    }


class Kubelet:
    """The volumes of the predictor's pod as local folders, and its containers' arguments made to run here."""

    def __init__(self, cluster: KubeCluster, pod: dict, root) -> None:
        self.cluster = cluster
        self.pod = pod
        self.volumes = {}
        for volume in pod["volumes"]:
            folder = root / volume["name"]
            if "configMap" in volume:
                self.config_map = volume["configMap"]["name"]
                self.config_volume = ConfigMapVolume(folder)
            else:
                folder.mkdir(parents=True)
            self.volumes[volume["name"]] = folder
        self.synced: dict | None = None

    def sync_config_map(self) -> bool:
        """Writes the ConfigMap's data into its volume when it changed, as kubelet does."""
        data = (get(self.cluster, CONFIG_MAP, self.config_map) or {}).get("data")
        if data is not None and data != self.synced:
            self.config_volume.write(data)
            self.synced = data
        return True

    def args(self, container: dict, server_port: int) -> list[str]:
        """The container's arguments with each mount path in the folder of its volume, and the server's
        port 8080 (the pod's) where the test's server listens."""
        mounts = {m["mountPath"]: str(self.volumes[m["name"]]) for m in container["volumeMounts"]}
        return [
            mounts.get(arg, arg).replace("127.0.0.1:8080", f"127.0.0.1:{server_port}")
            for arg in container["args"]
        ]


def test_a_trained_model_is_ready_once_the_agent_has_loaded_it(tmp_path, cluster, operator, bucket):
    mms = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "mms"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
    }
    cluster.client.create(ISVC(mms))
    cluster.client.create(TRAINED_MODEL(trained_model("iris", f"{bucket}/iris/model.joblib")))
    deployment = wait_for(lambda: get(cluster, DEPLOYMENT, "mms-predictor"), message="the Deployment")
    pod = copy.deepcopy(deployment["spec"]["template"]["spec"])
    kubelet = Kubelet(cluster, pod, tmp_path / "pod")
    wait_for(lambda: kubelet.sync_config_map() and "iris" in kubelet.synced["models.json"], message="listed")

    # The pod starts: its init container, then the server and the agent.
    (prefetch,) = pod["initContainers"]
    server_container, agent_container = pod["containers"]
    models = kubelet.volumes["model-dir"]
    env = {"MODELPLANE_HOME": str(tmp_path / "home")}
    init = AgentProcess(*kubelet.args(prefetch, 0), log_path=tmp_path / "prefetch.log", env=env)
    assert init.wait() == 0, init.log()
    assert (models / "iris" / "model.joblib").is_file()
    server = serve("--model-dir", str(models), "--runtime", "sklearn", "--multi-model", grpc=False)
    agent = AgentProcess(
        *kubelet.args(agent_container, server.http_port),
        "--poll-interval",
        "0.2",
        log_path=tmp_path / "agent.log",
        env=env,
    )
    try:
        server_container["ports"] = [{"name": "http", "containerPort": server.http_port, "protocol": "TCP"}]
        start_pod(
            cluster.client,
            "mms-predictor",
            cluster.namespace,
            [running(), running("agent")],
            ready=True,
            spec=pod,
        )
        deployment_available(cluster.client, "mms-predictor", cluster.namespace)
        wait_for(
            lambda: (
                accept_routes(cluster.client, cluster.namespace) >= 0
                and condition(get(cluster, ISVC, "mms"), "Ready").get("status") == "True"
            ),
            message="mms Ready",
        )
        wait_for(
            lambda: condition(get(cluster, TRAINED_MODEL, "iris"), "Ready").get("status") == "True",
            60,
            "iris",
        )

        # A TrainedModel added later: listed, seen by the agent through the volume, loaded, Ready.
        cluster.client.create(TRAINED_MODEL(trained_model("constant", f"{bucket}/constant/model.joblib")))
        wait_for(
            lambda: (
                kubelet.sync_config_map()
                and condition(get(cluster, TRAINED_MODEL, "constant"), "Ready").get("status") == "True"
            ),
            60,
            "constant Ready",
        )
        predicted = httpx.post(f"{server.url}/v1/models/constant:predict", json={"instances": [[1, 2, 3, 4]]})
        assert predicted.json() == {"predictions": [0]}

        # A deleted TrainedModel leaves the list, and the server.
        cluster.client.delete(TRAINED_MODEL, "iris", namespace=cluster.namespace)
        wait_for(
            lambda: (
                kubelet.sync_config_map()
                and httpx.get(f"{server.url}/v2/models/iris/ready").status_code == 404
                and not (models / "iris").exists()  # the agent removes its folder once it is unloaded
            ),
            60,
            "iris unloaded and its folder gone",
        )
    finally:
        agent.stop()
        server.stop()
