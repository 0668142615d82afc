"""End to end: the storage-config Secret, ModelMesh's single endpoint and the seeds' ModelMesh example,
on `modelplane up`.

A real S3 server (moto's) holds an iris model and the seeds' `tensorflow/mnist.savedmodel`. A `storage-config` Secret applied to the platform says
where it is and with which keys; a ModelMesh service and a Standard one name it with
`storage: {key, path}` and serve it. No read of the Secret (the CLI's, the API's watch, the services'
statuses, the platform's log) shows a value of it. The ModelMesh models then answer at the endpoint
`modelmesh-serving.default.<domain>`, found by the `mm-vmodel-id` header or by the name the request
gives, over REST and gRPC. The seeds' `example-tensorflow-mnist`, applied from examples/ as written,
is served by the built-in `triton-2.x` runtime from the storage its `localMinIO` key names.
"""

from __future__ import annotations

import base64
import json
import sys
from urllib.parse import urlsplit

import boto3
import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
import yaml
from tritonclient.utils import InferenceServerException

from modelplane.api.secrets import placeholder
from modelplane.control.modelmesh import mesh_model, model_digest, model_revision_name
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.e2e.platform_process import (
    REPO_ROOT,
    PlatformProcess,
    running_platform,
    wait_until,
    write_iris_models,
)
from tests.storage.servers import Server, start_moto

sys.path.insert(0, str(REPO_ROOT / "examples"))
from build_models import mnist_images, write_tensorflow_mnist  # noqa: E402

IRIS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], dtype=np.float32)
SECRET_KEY = "modelplane-e2e-secret-value"
ACCESS_KEY = "modelplane-e2e-access-key"
BUCKET = "e2e-models"
ENDPOINT = "modelmesh-serving.default.localhost"
SEEDS_EXAMPLE = REPO_ROOT / "examples" / "modelmesh" / "example-tensorflow-mnist.yaml"


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Server:
    server = start_moto()
    try:
        models = tmp_path_factory.mktemp("s3-models")
        from sklearn.linear_model import LogisticRegression

        write_iris_models({models / "iris": LogisticRegression(max_iter=1000)})
        client = s3_client(server.url)
        client.create_bucket(Bucket=BUCKET)
        client.put_object(
            Bucket=BUCKET,
            Key="sklearn/iris/model.joblib",
            Body=(models / "iris" / "model.joblib").read_bytes(),
        )
        mnist = write_tensorflow_mnist(models / "mnist.savedmodel")
        for path in (p for p in mnist.rglob("*") if p.is_file()):
            key = f"tensorflow/mnist.savedmodel/{path.relative_to(mnist).as_posix()}"
            client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory, s3):
    home = tmp_path_factory.mktemp("mp-secret-home")
    with running_platform(home) as platform:
        yield platform


def storage_secret(endpoint: str) -> dict:
    """KServe's storage-config Secret: the S3 document as `stringData`, a second key as base64 `data`."""
    document = {
        "type": "s3",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "endpoint_url": endpoint,
        "bucket": BUCKET,
        "region": "us-east-1",
    }
    other = json.dumps({**document, "bucket": "elsewhere"}).encode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "storage-config"},
        "type": "Opaque",
        "stringData": {
            "e2eS3": json.dumps(document),
            "localMinIO": json.dumps(document),
            "default_s3": json.dumps(document),  # KServe's entry for a spec without a key, of type s3
        },
        "data": {"other": base64.b64encode(other).decode()},
    }


RUNTIME = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "ServingRuntime",
    "metadata": {"name": "mm-sklearn"},
    "spec": {
        "multiModel": True,
        "supportedModelFormats": [{"name": "sklearn", "autoSelect": True}],
        "containers": [
            {
                "name": "kserve-container",
                "image": "kserve/sklearnserver:latest",
                "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
                "resources": {"limits": {"memory": "1Gi"}},
            }
        ],
    },
}


def isvc(name: str, *, mesh: bool) -> dict:
    annotations = {"serving.kserve.io/deploymentMode": "ModelMesh" if mesh else "Standard"}
    model = {"modelFormat": {"name": "sklearn"}, "storage": {"key": "e2eS3", "path": "sklearn/iris"}}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"predictor": {"model": model}},
    }


def predict_v1(
    platform: PlatformProcess, host: str, name: str, model_id: str | None = None
) -> httpx.Response:
    headers = {"host": host, **({"mm-vmodel-id": model_id} if model_id else {})}
    body = {"instances": IRIS.tolist()}
    url = f"{platform.gateway_url}/v1/models/{name}:predict"
    return httpx.post(url, json=body, headers=headers, timeout=120)


def gateway_target(platform: PlatformProcess) -> str:
    return urlsplit(platform.gateway_url).netloc


def infer_request(name: str) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=name)
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=list(IRIS.shape))
    tensor.contents.fp32_contents.extend(IRIS.flatten().tolist())
    return request


def classes(response: pb.ModelInferResponse) -> list[int]:
    contents = response.outputs[0].contents
    return list(contents.int64_contents or contents.int_contents)


def test_services_fetch_with_the_storage_config_secret(platform, s3):
    platform.apply(storage_secret(s3.url), RUNTIME)
    platform.apply(isvc("mesh-iris", mesh=True), isvc("std-iris", mesh=False))
    platform.cli("wait", "--for=condition=Ready", "isvc/mesh-iris", "isvc/std-iris", "--timeout=300s")
    for name in ("mesh-iris", "std-iris"):
        response = predict_v1(platform, f"{name}.default.localhost", name)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [1, 1]}


def test_the_storage_secret_name_annotation_names_another_secret_for_the_key(platform, s3):
    other = storage_secret(s3.url)
    other["metadata"]["name"] = "team-storage"
    other["stringData"] = {"teamS3": other["stringData"]["e2eS3"]}
    other.pop("data")
    service = isvc("team-iris", mesh=False)
    service["metadata"]["annotations"]["serving.kserve.io/storageSecretName"] = "team-storage"
    service["spec"]["predictor"]["model"]["storage"]["key"] = "teamS3"  # a key storage-config lacks
    platform.apply(other, service)
    platform.cli("wait", "--for=condition=Ready", "isvc/team-iris", "--timeout=300s")
    response = predict_v1(platform, "team-iris.default.localhost", "team-iris")
    assert response.status_code == 200, response.text


def test_a_spec_without_a_key_reads_the_default_entry_of_its_type(platform, s3):
    service = isvc("unkeyed-iris", mesh=False)
    service["spec"]["predictor"]["model"]["storage"] = {"path": "sklearn/iris", "parameters": {"type": "s3"}}
    platform.apply(storage_secret(s3.url), service)
    platform.cli("wait", "--for=condition=Ready", "isvc/unkeyed-iris", "--timeout=300s")
    response = predict_v1(platform, "unkeyed-iris.default.localhost", "unkeyed-iris")
    assert response.status_code == 200, response.text


def test_a_mesh_storage_uri_takes_its_key_from_the_secret_key_annotation_or_the_default_entry(platform, s3):
    """ModelMesh Serving's `serving.kserve.io/secretKey` names the key of a storageUri; without one,
    its puller reads the Secret's `default_<type>` entry."""
    annotated = isvc("annotated-iris", mesh=True)
    annotated["metadata"]["annotations"]["serving.kserve.io/secretKey"] = "localMinIO"
    annotated["spec"]["predictor"]["model"] = {
        "modelFormat": {"name": "sklearn"},
        "storageUri": f"s3://{BUCKET}/sklearn/iris",
    }
    plain = isvc("plain-uri-iris", mesh=True)
    plain["spec"]["predictor"]["model"] = dict(annotated["spec"]["predictor"]["model"])
    platform.apply(storage_secret(s3.url), RUNTIME, annotated, plain)
    for name in ("annotated-iris", "plain-uri-iris"):
        response = predict_v1(platform, f"{name}.default.localhost", name)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [1, 1]}


def test_a_logger_writes_to_the_bucket_its_storage_key_names(platform, s3):
    service = isvc("logged-iris", mesh=False)
    service["spec"]["predictor"]["logger"] = {
        "mode": "all",
        "url": f"s3://{BUCKET}/payload-logs",
        "storage": {"key": "e2eS3", "path": "run-1", "parameters": {"format": "json"}},
        "batchSize": 2,
    }
    platform.apply(service)
    platform.cli("wait", "--for=condition=Ready", "isvc/logged-iris", "--timeout=300s")
    response = predict_v1(platform, "logged-iris.default.localhost", "logged-iris")
    assert response.status_code == 200, response.text
    client = s3_client(s3.url)
    folder = "payload-logs/default/logged-iris/predictor/run-1/"

    def written() -> list[str]:
        return [
            item["Key"] for item in client.list_objects_v2(Bucket=BUCKET, Prefix=folder).get("Contents", [])
        ]

    wait_until(written, "the payload log object", platform, timeout=30)
    (key,) = written()
    request_id = response.headers["x-request-id"]
    assert key == f"{folder}{request_id}-request.json"
    records = json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert [record["reqType"].rsplit(".", 1)[1] for record in records] == ["request", "response"]
    assert records[1]["statusCode"] == 200


def test_no_read_shows_a_value_of_the_secret(platform, s3):
    shown = platform.cli("get", "secret", "storage-config", "-o", "yaml").stdout
    secret = yaml.safe_load(shown)
    assert sorted(secret["data"]) == ["default_s3", "e2eS3", "localMinIO", "other"]
    assert all(value == placeholder(len(base64.b64decode(value))) for value in secret["data"].values())
    assert "stringData" not in secret
    listed = platform.cli("get", "secrets").stdout
    assert "storage-config" in listed and "Opaque" in listed
    watched = httpx.get(
        f"{platform.api_url}/api/v1/namespaces/default/secrets",
        params={"watch": "true", "timeoutSeconds": "1"},
        timeout=30,
    ).text
    statuses = platform.cli("get", "isvc", "-o", "json").stdout
    written = storage_secret(s3.url)
    encoded = [base64.b64encode(written["stringData"]["e2eS3"].encode()).decode(), written["data"]["other"]]
    logs = [
        path.read_text(errors="replace") for path in (platform.home / "logs").rglob("*") if path.is_file()
    ]
    for text in (shown, listed, watched, statuses, platform.log(), *logs):
        assert SECRET_KEY not in text and not any(value in text for value in encoded)
        assert ACCESS_KEY not in text
    # The values stay where they are: the ModelMesh model, unloaded or not, serves with them.
    assert predict_v1(platform, "mesh-iris.default.localhost", "mesh-iris").status_code == 200


def test_the_mesh_endpoint_routes_rest_by_header_and_by_path(platform):
    response = predict_v1(platform, ENDPOINT, "mesh-iris", model_id="mesh-iris")
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [1, 1]}
    v2 = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS.tolist()}]}
    response = platform.request("POST", ENDPOINT, "/v2/models/mesh-iris/infer", json=v2)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [1, 1]
    # ModelMesh answers with the id of the version that serves (`<name>__isvc-<digest>`), which
    # chooses the model too.
    isvc = json.loads(platform.cli("get", "isvc", "mesh-iris", "-o", "json").stdout)
    version = model_revision_name("mesh-iris", model_digest(mesh_model(isvc)))
    assert response.json()["model_name"] == version
    own_host = platform.request("POST", "mesh-iris.default.localhost", "/v2/models/mesh-iris/infer", json=v2)
    assert own_host.json()["model_name"] == version
    # Its metadata too: ModelMesh puts the version's id in the runtime's metadata request.
    for host in (ENDPOINT, "mesh-iris.default.localhost"):
        metadata = platform.request("GET", host, "/v2/models/mesh-iris")
        assert metadata.status_code == 200, metadata.text
        assert metadata.json()["name"] == version
    url = f"{platform.gateway_url}/v1/models/mesh-iris:predict"
    body = {"instances": IRIS.tolist()}
    by_version = httpx.post(url, json=body, headers={"host": ENDPOINT, "mm-model-id": version}, timeout=60)
    assert by_version.status_code == 200, by_version.text
    # The path names the model before the header does (ModelMesh's REST proxy makes it the call's
    # model_name, which ModelMesh reads first); a path that names none leaves it to the header.
    stale = {"host": ENDPOINT, "mm-model-id": "mesh-iris__isvc-0"}
    assert httpx.post(url, json=body, headers=stale, timeout=60).status_code == 200
    other = httpx.get(f"{platform.gateway_url}/v2/health/ready", headers=stale, timeout=60)
    assert other.status_code == 404
    assert "no ModelMesh model 'mesh-iris__isvc-0'" in other.json()["error"]
    # A model the endpoint does not serve (a Standard service is not a ModelMesh model).
    response = predict_v1(platform, ENDPOINT, "std-iris", model_id="std-iris")
    assert response.status_code == 404
    assert "no ModelMesh model 'std-iris'" in response.json()["error"]


def test_the_mesh_endpoint_routes_grpc_by_metadata_and_by_the_model_name(platform):
    options = [("grpc.default_authority", ENDPOINT)]
    with grpc.insecure_channel(gateway_target(platform), options=options) as channel:
        stub = InferenceStub(channel)
        by_header = stub.ModelInfer(
            infer_request("mesh-iris"), metadata=[("mm-vmodel-id", "mesh-iris")], timeout=120
        )
        assert classes(by_header) == [1, 1]
        by_name = stub.ModelInfer(infer_request("mesh-iris"), timeout=120)
        assert classes(by_name) == [1, 1]
        assert by_name.model_name.startswith("mesh-iris__isvc-")  # ModelMesh's id of the version
        metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="mesh-iris"), timeout=60)
        assert metadata.name == by_name.model_name
        assert stub.ModelReady(pb.ModelReadyRequest(name="mesh-iris"), timeout=60).ready
        with pytest.raises(grpc.RpcError) as refused:
            stub.ServerLive(pb.ServerLiveRequest(), timeout=60)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "mm-vmodel-id" in refused.value.details()

    client = triton.InferenceServerClient(gateway_target(platform), channel_args=options)
    try:
        tensor = triton.InferInput("input-0", list(IRIS.shape), "FP32")
        tensor.set_data_from_numpy(IRIS)
        result = client.infer("mesh-iris", [tensor], headers={"mm-vmodel-id": "mesh-iris"})
        assert result.as_numpy(result.get_response().outputs[0].name).tolist() == [1, 1]
        with pytest.raises(InferenceServerException, match="no ModelMesh model 'missing'"):
            client.infer("missing", [tensor])
    finally:
        client.close()


SCHEMA = {
    "inputs": [{"name": "sepals_and_petals", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "species", "datatype": "INT64", "shape": [-1]}],
}


def test_a_mesh_models_schema_file_gives_its_metadata(platform, s3):
    """ModelMesh Serving's `storage.schemaPath` (else the `serving.kserve.io/schemaPath` annotation):
    a JSON file in the model's storage whose inputs and outputs ModelMesh's runtime adapters make the
    model's metadata. One that is missing or malformed fails the load, with why."""
    client = s3_client(s3.url)
    client.put_object(Bucket=BUCKET, Key="schemas/iris.json", Body=json.dumps(SCHEMA).encode())
    client.put_object(Bucket=BUCKET, Key="schemas/broken.json", Body=b'{"inputs": [{"shape": "4"}]}')
    by_field = isvc("schema-iris", mesh=True)
    by_field["spec"]["predictor"]["model"]["storage"]["schemaPath"] = "schemas/iris.json"
    by_annotation = isvc("annotated-schema-iris", mesh=True)
    by_annotation["metadata"]["annotations"].update(
        {"serving.kserve.io/secretKey": "e2eS3", "serving.kserve.io/schemaPath": "schemas/iris.json"}
    )
    by_annotation["spec"]["predictor"]["model"] = {
        "modelFormat": {"name": "sklearn"},
        "storageUri": f"s3://{BUCKET}/sklearn/iris",
    }
    missing = isvc("missing-schema-iris", mesh=True)
    missing["spec"]["predictor"]["model"]["storage"]["schemaPath"] = "schemas/missing.json"
    broken = isvc("broken-schema-iris", mesh=True)
    broken["spec"]["predictor"]["model"]["storage"]["schemaPath"] = "schemas/broken.json"
    applied = platform.apply(storage_secret(s3.url), RUNTIME, by_field, by_annotation, missing, broken)
    assert "schemaPath" not in applied.stderr  # acted on: nothing to warn of

    for name in ("schema-iris", "annotated-schema-iris"):
        metadata = platform.request("GET", f"{name}.default.localhost", f"/v2/models/{name}")
        assert metadata.status_code == 200, metadata.text
        assert metadata.json()["name"].startswith(f"{name}__isvc-")
        assert (metadata.json()["inputs"], metadata.json()["outputs"]) == (
            SCHEMA["inputs"],
            SCHEMA["outputs"],
        )
        assert predict_v1(platform, f"{name}.default.localhost", name).json() == {"predictions": [1, 1]}
    options = [("grpc.default_authority", ENDPOINT)]
    with grpc.insecure_channel(gateway_target(platform), options=options) as channel:
        metadata = InferenceStub(channel).ModelMetadata(
            pb.ModelMetadataRequest(name="schema-iris"), timeout=60
        )
    assert [(tensor.name, list(tensor.shape)) for tensor in metadata.inputs] == [
        ("sepals_and_petals", [-1, 4])
    ]

    for name, why in (
        ("missing-schema-iris", "the model's schema could not be fetched"),
        (
            "broken-schema-iris",
            "Error parsing schema file: Unable to parse model schema JSON: inputs[0].shape",
        ),
    ):
        response = predict_v1(platform, f"{name}.default.localhost", name)
        assert response.status_code == 503, response.text
        assert why in response.json()["error"]
        status = json.loads(platform.cli("get", "isvc", name, "-o", "json").stdout)["status"]
        assert status["modelStatus"]["lastFailureInfo"]["reason"] == "ModelLoadFailed"
        assert why in status["modelStatus"]["lastFailureInfo"]["message"]


def test_the_seeds_modelmesh_example_is_served_as_written(platform):
    platform.cli("apply", "-f", str(SEEDS_EXAMPLE))
    platform.cli("wait", "--for=condition=Ready", "isvc/example-tensorflow-mnist", "--timeout=300s")
    status = json.loads(platform.cli("get", "isvc", "example-tensorflow-mnist", "-o", "json").stdout)[
        "status"
    ]
    assert status["deploymentMode"] == "ModelMesh"
    assert status["clusterServingRuntimeName"] == "triton-2.x"
    images, labels = mnist_images()
    picked = [0, 1, 2, 3, 11, 42]
    host = "example-tensorflow-mnist.default.localhost"
    body = {"instances": images[picked].tolist()}
    response = platform.request("POST", host, "/v1/models/example-tensorflow-mnist:predict", json=body)
    assert response.status_code == 200, response.text
    assert np.argmax(response.json()["predictions"], axis=1).tolist() == labels[picked].tolist()

    # ModelMesh's own way in: gRPC at the single endpoint, the model chosen by mm-vmodel-id.
    options = [("grpc.default_authority", ENDPOINT)]
    client = triton.InferenceServerClient(gateway_target(platform), channel_args=options)
    try:
        metadata = client.get_model_metadata(
            "example-tensorflow-mnist", headers={"mm-vmodel-id": "example-tensorflow-mnist"}
        )
        (tensor_spec,) = metadata.inputs
        tensor = triton.InferInput(tensor_spec.name, [len(picked), 28, 28], "FP32")
        tensor.set_data_from_numpy(images[picked])
        result = client.infer(
            "example-tensorflow-mnist", [tensor], headers={"mm-vmodel-id": "example-tensorflow-mnist"}
        )
        scores = result.as_numpy(result.get_response().outputs[0].name)
        assert np.argmax(scores, axis=1).tolist() == labels[picked].tolist()
    finally:
        client.close()
    status = json.loads(platform.cli("get", "isvc", "example-tensorflow-mnist", "-o", "json").stdout)[
        "status"
    ]
    assert status["modelStatus"]["states"] == {"activeModelState": "Loaded"}
    assert status["modelStatus"]["copies"] == {"failedCopies": 0, "totalCopies": 1}
