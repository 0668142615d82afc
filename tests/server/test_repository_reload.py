"""The repository API loads again a model it unloaded, as Triton does, however the server was started:
one model from `--model-dir`, a folder of models, or a multi-model server with a model of its own. Spoken with tritonclient over HTTP and gRPC."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from tests.server.conftest import iris_array
from tests.server.processes import serve


@pytest.fixture(scope="module")
def one_model_server(sklearn_dir):
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "iris")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def repository_server(sklearn_dir, tmp_path_factory):
    repository = tmp_path_factory.mktemp("repository")
    for name in ("iris", "other"):
        shutil.copytree(sklearn_dir, repository / name)
    server = serve("--model-dir", str(repository))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def multi_model_server_with_its_own_model(sklearn_dir):
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "iris", "--multi-model")
    yield server
    server.stop()


def _http(server) -> triton_http.InferenceServerClient:
    return triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}")


def _grpc(server) -> triton_grpc.InferenceServerClient:
    return triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")


def _predict(client, module, name: str) -> list:
    tensor = module.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(iris_array())
    return client.infer(name, [tensor]).as_numpy("output-0").tolist()


def _states(client) -> dict[str, tuple[str, str]]:
    """Each model of the repository index: its state and the reason for it."""
    index = client.get_model_repository_index()
    if isinstance(index, list):  # HTTP: a JSON list
        return {entry["name"]: (entry["state"], entry.get("reason", "")) for entry in index}
    return {entry.name: (entry.state, entry.reason) for entry in index.models}


@pytest.mark.parametrize("module", [triton_http, triton_grpc], ids=["http", "grpc"])
@pytest.mark.parametrize(
    "server_fixture", ["one_model_server", "repository_server", "multi_model_server_with_its_own_model"]
)
def test_an_unloaded_model_loads_again(request, server_fixture, module):
    server = request.getfixturevalue(server_fixture)
    client = _http(server) if module is triton_http else _grpc(server)
    assert _predict(client, module, "iris") == [1, 1]

    client.unload_model("iris")
    assert not client.is_model_ready("iris")
    # The server stays ready, so that a platform keeps routing to it and the load below can reach it.
    assert client.is_server_ready()
    assert _states(client)["iris"] == ("UNAVAILABLE", "unloaded")
    with pytest.raises(InferenceServerException):
        _predict(client, module, "iris")

    client.load_model("iris")
    assert client.is_model_ready("iris")
    assert _states(client)["iris"][0] == "READY"
    assert _predict(client, module, "iris") == [1, 1]


def test_a_load_of_a_model_the_server_never_had_is_refused(one_model_server):
    client = _http(one_model_server)
    with pytest.raises(InferenceServerException, match="not in the repository"):
        client.load_model("nope")
    assert client.is_model_ready("iris")


def test_unloading_twice_says_the_model_is_not_loaded(repository_server):
    client = _grpc(repository_server)
    client.unload_model("other")
    with pytest.raises(InferenceServerException, match="other"):
        client.unload_model("other")
    client.load_model("other")
    assert _predict(client, triton_grpc, "other") == [1, 1]


def test_a_load_names_a_model_of_the_repository_never_a_path(repository_server, sklearn_dir, tmp_path):
    """A name is a subfolder of the repository: `../x` or `/x` would load (unpickle) any folder."""
    outside = tmp_path / "outside"
    shutil.copytree(sklearn_dir, outside)
    client = _grpc(repository_server)
    for name in (str(outside), f"../{outside.name}", "iris/../other", ".staging"):
        with pytest.raises(InferenceServerException, match="a model is one of its subfolders"):
            client.load_model(name)
    assert sorted(_states(client)) == ["iris", "other"]


@pytest.mark.parametrize("module", [triton_http, triton_grpc], ids=["http", "grpc"])
def test_a_load_of_a_name_longer_than_a_file_name_can_be_is_not_found(repository_server, module):
    """Longer than the file system's 255 bytes: no such folder, not an error of the server's own."""
    client = _http(repository_server) if module is triton_http else _grpc(repository_server)
    with pytest.raises(InferenceServerException, match="is not in") as refused:
        client.load_model("x" * 300)
    assert refused.value.status() in ("404", "StatusCode.NOT_FOUND")


@pytest.mark.parametrize("module", [triton_http, triton_grpc], ids=["http", "grpc"])
def test_the_index_lists_a_model_of_the_folder_never_loaded(sklearn_dir, tmp_path, module):
    repository = tmp_path / "repository"
    shutil.copytree(sklearn_dir, repository / "iris")
    (repository / "notes").mkdir()  # no model file: not a model
    server = serve("--model-dir", str(repository), "--multi-model")
    try:
        client = _http(server) if module is triton_http else _grpc(server)
        shutil.copytree(sklearn_dir, repository / "late")
        assert _states(client) == {"iris": ("READY", ""), "late": ("", "")}
        ready = httpx.post(f"{server.url}/v2/repository/index", json={"ready": True}).json()
        assert [entry["name"] for entry in ready] == ["iris"]

        client.load_model("late")
        assert _states(client) == {"iris": ("READY", ""), "late": ("READY", "")}
        assert _predict(client, module, "late") == [1, 1]
    finally:
        server.stop()


@pytest.mark.parametrize("module", [triton_http, triton_grpc], ids=["http", "grpc"])
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"config": '{"backend": "onnxruntime"}'}, "does not take a model configuration"),
        ({"config": "{}", "files": {"file:1/model.onnx": b"\x08\x07"}}, "does not take model files"),
    ],
    ids=["config", "files"],
)
def test_a_load_that_overrides_the_model_is_refused(repository_server, module, overrides, message):
    """Triton loads the configuration and files a load carries; modelplane would load the folder's model
    instead, so it refuses them."""
    client = _http(repository_server) if module is triton_http else _grpc(repository_server)
    with pytest.raises(InferenceServerException, match=message) as caught:
        client.load_model("other", **overrides)
    assert caught.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")
    assert client.is_model_ready("other")


@pytest.mark.parametrize("module", [triton_http, triton_grpc], ids=["http", "grpc"])
def test_an_unload_of_dependents_unloads_the_model(repository_server, module):
    client = _http(repository_server) if module is triton_http else _grpc(repository_server)
    client.unload_model("other", unload_dependents=True)
    assert not client.is_model_ready("other")
    client.load_model("other")
    assert _predict(client, module, "other") == [1, 1]


@pytest.mark.parametrize(
    ("verb", "body", "fragment"),
    [
        ("load", {"parameters": {"poll": True}}, "load parameter 'poll' is not one modelplane knows"),
        ("unload", {"parameters": {"unload_dependents": "yes"}}, "must be true or false"),
        ("unload", {"parameters": {"force": True}}, "unload parameter 'force'"),
        ("load", {"config": "{}"}, "takes only 'parameters'"),
        ("load", [], "must be a JSON object"),
    ],
)
def test_load_and_unload_parameters_modelplane_does_not_know_are_400(repository_server, verb, body, fragment):
    response = httpx.post(f"{repository_server.url}/v2/repository/models/other/{verb}", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert httpx.get(f"{repository_server.url}/v2/models/other/ready").status_code == 200


def test_a_load_with_a_model_id_answers_as_that_id(repository_server):
    """ModelMesh's runtimes load a model under its concrete id and answer with it: a load's `model_id`
    makes the model answer as that id while requests keep naming it by its name."""
    url = f"{repository_server.url}/v2/repository/models/other/load"
    body = {"parameters": {"model_id": "other__isvc-0123456789"}}
    try:
        assert httpx.post(url, json=body).status_code == 200
        inputs = [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": iris_array().tolist()}]
        answer = httpx.post(f"{repository_server.url}/v2/models/other/infer", json={"inputs": inputs})
        assert answer.status_code == 200
        assert answer.json()["model_name"] == "other__isvc-0123456789"
        grpc_answer = _grpc(repository_server).infer("other", _iris_input(triton_grpc))
        assert grpc_answer.get_response().model_name == "other__isvc-0123456789"
        # Its metadata and readiness name it so too: ModelMesh puts the id in the runtime's metadata
        # request, and the runtime answers with the only name it knows the model by.
        metadata = httpx.get(f"{repository_server.url}/v2/models/other").json()
        assert metadata["name"] == "other__isvc-0123456789"
        assert _grpc(repository_server).get_model_metadata("other").name == "other__isvc-0123456789"
        ready = httpx.get(f"{repository_server.url}/v2/models/other/ready")
        assert ready.json() == {"name": "other__isvc-0123456789", "ready": True}
        v1 = httpx.get(f"{repository_server.url}/v1/models/other")
        assert v1.json() == {"name": "other__isvc-0123456789", "ready": True}
        refused = httpx.post(url, json={"parameters": {"model_id": 7}})
        assert refused.status_code == 400
        assert "'model_id' must be a string" in refused.json()["error"]
    finally:  # the next tests see the model as it was
        client = _http(repository_server)
        client.unload_model("other")
        client.load_model("other")


def _iris_input(module) -> list:
    tensor = module.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(iris_array())
    return [tensor]


def test_a_load_with_a_schema_gives_the_metadata_its_inputs_and_outputs(repository_server):
    """modelplane's `schema` load parameter, the text of a ModelMesh schema file: the model's metadata
    gives its inputs and outputs (those it leaves out stay the model's own), as ModelMesh's runtime
    adapters write them into the runtime's model configuration, and requests are checked against its
    inputs, as Triton checks them; a malformed one fails the load."""
    url = f"{repository_server.url}/v2/repository/models/other/load"
    inputs = [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    outputs = [{"name": "species", "datatype": "INT64", "shape": [-1]}]
    schema = json.dumps({"inputs": inputs, "outputs": outputs})
    try:
        assert httpx.post(url, json={"parameters": {"schema": schema}}).status_code == 200
        metadata = httpx.get(f"{repository_server.url}/v2/models/other").json()
        assert (metadata["name"], metadata["inputs"], metadata["outputs"]) == ("other", inputs, outputs)
        grpc_metadata = _grpc(repository_server).get_model_metadata("other", as_json=True)
        assert grpc_metadata["inputs"] == [{**inputs[0], "shape": ["-1", "4"]}]
        infer = f"{repository_server.url}/v2/models/other/infer"
        features = {"name": "features", "shape": [2, 4], "datatype": "FP32", "data": iris_array().tolist()}
        assert httpx.post(infer, json={"inputs": [features]}).json()["outputs"][0]["data"] == [1, 1]
        # A request that does not fit the schema's inputs is refused, as Triton refuses it.
        refused = httpx.post(infer, json={"inputs": [{**features, "name": "input-0"}]})
        assert refused.status_code == 400
        assert refused.json()["error"] == "unexpected inference input 'input-0' for model 'other'"
        refused = httpx.post(infer, json={"inputs": [{**features, "shape": [4, 2]}]})
        assert refused.json()["error"] == (
            "unexpected shape for input 'features' for model 'other'. Expected [-1,4], got [4,2]."
        )
        tensor = triton_grpc.InferInput("features", [2, 4], "FP64")
        tensor.set_data_from_numpy(iris_array().astype("float64"))
        with pytest.raises(InferenceServerException) as grpc_refused:
            _grpc(repository_server).infer("other", [tensor])
        assert grpc_refused.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert grpc_refused.value.message() == (
            "inference input 'features' data-type is 'FP64', but model 'other' expects 'FP32'"
        )

        inputs_only = json.dumps({"inputs": inputs})
        assert httpx.post(url, json={"parameters": {"schema": inputs_only}}).status_code == 200
        assert httpx.get(f"{repository_server.url}/v2/models/other").json()["outputs"] == []

        malformed = httpx.post(url, json={"parameters": {"schema": '{"inputs": [{"shape": "4"}]}'}})
        assert malformed.status_code == 400
        assert malformed.json()["error"] == (
            "Error parsing schema file: Unable to parse model schema JSON: inputs[0].shape must be a "
            'list of whole numbers, not "4"'
        )
        # A load without one gives the model's own metadata back.
        assert httpx.post(url, json={}).status_code == 200
        assert httpx.get(f"{repository_server.url}/v2/models/other").json()["inputs"] == []
    finally:
        client = _http(repository_server)
        client.unload_model("other")
        client.load_model("other")
