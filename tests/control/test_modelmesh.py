"""ModelMesh mode's pure parts: placement with LRU eviction, the pool a runtime gets, runtime choice and
model status as ModelMesh reports it."""

from __future__ import annotations

import json

import pytest

from modelplane.api import RuntimeSelectionError, builtin_cluster_runtimes
from modelplane.control.modelmesh import (
    MeshModelState,
    deployment_mode,
    mesh_model,
    model_digest,
    model_status,
    pool_spec,
    schema_argument,
    select_pool_runtime,
    storage_argument,
)
from modelplane.control.observed import Failure
from modelplane.control.placement import Copy, DoesNotFit, ReplicaRoom, over_capacity, place

MIB = 1024**2


def room(address: str, *copies: tuple[str, int, float], capacity: int = 20 * MIB) -> ReplicaRoom:
    return ReplicaRoom(address, capacity, tuple(Copy(m, size * MIB, used) for m, size, used in copies))


def test_a_model_goes_where_there_is_most_room():
    replicas = [room("a", ("x", 8, 1.0)), room("b")]
    assert place(8 * MIB, replicas).replica == "b"


def test_the_least_recently_used_copy_of_the_pool_makes_room():
    replicas = [room("a", ("x", 8, 5.0), ("y", 8, 1.0)), room("b", ("z", 8, 2.0), ("w", 8, 3.0))]
    assert place(8 * MIB, replicas) == place(8 * MIB, list(reversed(replicas)))
    chosen = place(8 * MIB, replicas)
    assert (chosen.replica, chosen.evict) == ("a", ("y",))


def test_several_copies_leave_when_one_is_not_enough():
    replicas = [room("a", ("x", 6, 1.0), ("y", 6, 2.0), ("z", 6, 3.0))]
    assert place(12 * MIB, replicas).evict == ("x", "y")


def test_pinned_copies_stay():
    replicas = [room("a", ("x", 10, 1.0), ("y", 10, 2.0))]
    assert place(10 * MIB, replicas, pinned={"x"}).evict == ("y",)
    with pytest.raises(DoesNotFit, match="held by models in use"):
        place(10 * MIB, replicas, pinned={"x", "y"})


def test_a_model_bigger_than_every_replica_fits_nowhere():
    with pytest.raises(DoesNotFit, match=r"needs 32.0Mi, more than a replica .* \(20.0Mi\)"):
        place(32 * MIB, [room("a"), room("b")])


def test_over_capacity_unloads_the_oldest_but_the_kept():
    replica = room("a", ("new", 12, 9.0), ("old", 6, 1.0), ("mid", 6, 2.0))
    assert over_capacity(replica, keep={"new"}) == ("old",)


def _runtime(name: str, **spec) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "autoSelect": True}],
            "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:latest"}],
            **spec,
        },
    }


def _isvc(predictor: dict, annotations: dict | None = None, status: dict | None = None) -> dict:
    isvc = {"metadata": {"name": "m", "namespace": "default", "annotations": annotations or {}}}
    isvc["spec"] = {"predictor": predictor}
    if status:
        isvc["status"] = status
    return isvc


def test_the_pool_runtime_is_a_multi_model_one():
    isvc = _isvc({"sklearn": {"storageUri": "pvc://m/x"}})
    single, multi = _runtime("single"), _runtime("multi", multiModel=True)
    assert select_pool_runtime(isvc, [single, multi], []).name == "multi"
    with pytest.raises(RuntimeSelectionError) as caught:
        select_pool_runtime(isvc, [single], [])
    assert caught.value.reason == "NoSupportingRuntime"
    named = _isvc({"model": {"modelFormat": {"name": "sklearn"}, "runtime": "single", "storageUri": "x"}})
    with pytest.raises(RuntimeSelectionError, match="not multiModel"):
        select_pool_runtime(named, [single], [])


def test_the_built_in_runtimes_serve_the_seeds_example_and_its_siblings():
    """ModelMesh Serving's runtime names: the seeds' `example-tensorflow-mnist` goes to triton-2.x."""
    builtin = builtin_cluster_runtimes()
    seeds = _isvc({"model": {"modelFormat": {"name": "tensorflow"}, "storage": {"key": "k", "path": "p"}}})
    assert select_pool_runtime(seeds, [], builtin).name == "triton-2.x"
    for framework, runtime in (
        ("sklearn", "mlserver-1.x"),
        ("xgboost", "mlserver-1.x"),
        ("onnx", "triton-2.x"),
    ):
        assert (
            select_pool_runtime(_isvc({framework: {"storageUri": "s3://b/m"}}), [], builtin).name == runtime
        )
    mar = _isvc({"model": {"modelFormat": {"name": "pytorch-mar"}, "storageUri": "s3://b/m"}})
    assert select_pool_runtime(mar, [], builtin).name == "torchserve-0.x"
    # A namespace's own runtime goes first, as in KServe.
    assert select_pool_runtime(seeds, [_runtime("mine", multiModel=True)], builtin).name == "triton-2.x"
    sklearn = _isvc({"sklearn": {"storageUri": "s3://b/m"}})
    assert select_pool_runtime(sklearn, [_runtime("mine", multiModel=True)], builtin).name == "mine"


def test_a_model_without_a_protocol_goes_to_a_runtime_of_any():
    """As ModelMesh Serving chooses (its runtimes speak grpc-v2 only); a protocol named still counts."""
    grpc_only = _runtime("grpc-only", multiModel=True, protocolVersions=["grpc-v2"])
    assert select_pool_runtime(_isvc({"sklearn": {"storageUri": "x"}}), [grpc_only], []).name == "grpc-only"
    v1 = _isvc({"sklearn": {"storageUri": "x", "protocolVersion": "v1"}})
    with pytest.raises(RuntimeSelectionError):
        select_pool_runtime(v1, [grpc_only], [])


def test_a_shorthand_is_read_as_a_model():
    assert mesh_model(_isvc({"sklearn": {"storageUri": "s3://b/m"}})) == {
        "modelFormat": {"name": "sklearn"},
        "storageUri": "s3://b/m",
    }


def test_a_pool_takes_replicas_and_memory_from_its_runtime():
    from modelplane.api.runtime_selection import RuntimeSelection

    runtime = _runtime("multi", multiModel=True, replicas=3, builtInAdapter={"memBufferBytes": 100 * MIB})
    runtime["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1Gi"}}
    spec = pool_spec(RuntimeSelection("ServingRuntime", runtime), "default")
    assert (spec.name, spec.replicas, spec.memory, spec.capacity) == (
        "modelmesh-serving-multi",
        3,
        1024 * MIB,
        924 * MIB,
    )
    defaults = pool_spec(RuntimeSelection("ServingRuntime", _runtime("multi", multiModel=True)), "default")
    assert (defaults.replicas, defaults.memory, defaults.capacity) == (1, 2048 * MIB, 1920 * MIB)
    assert (spec.load_timeout, defaults.load_timeout) == (None, None)
    timed = _runtime("multi", multiModel=True, builtInAdapter={"modelLoadingTimeoutMillis": 30000})
    assert pool_spec(RuntimeSelection("ServingRuntime", timed), "default").load_timeout == 30.0


def test_the_mode_recorded_in_the_status_wins():
    mode = "serving.kserve.io/deploymentMode"
    assert deployment_mode(_isvc({})) == "Knative"
    assert deployment_mode(_isvc({}, {mode: "ModelMesh"})) == "ModelMesh"
    assert deployment_mode(_isvc({}, {mode: "RawDeployment"})) == "Standard"
    assert deployment_mode(_isvc({}, {mode: "Knative"}, {"deploymentMode": "ModelMesh"})) == "ModelMesh"


FAILURE = Failure("ModelLoadFailed", "bad file", time="2024-01-01T00:00:00Z", location="pool-0")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            MeshModelState(pool_ready=True, revision="m__isvc-1"),
            {"transitionStatus": "UpToDate", "states": {"activeModelState": "Standby"}},
        ),
        (
            MeshModelState(revision="m__isvc-1"),
            {"transitionStatus": "UpToDate", "states": {"activeModelState": "Pending"}},
        ),
        (
            MeshModelState(pool_ready=True, revision="m__isvc-1", loading=True),
            {"transitionStatus": "UpToDate", "states": {"activeModelState": "Loading"}},
        ),
        (
            MeshModelState(pool_ready=True, revision="m__isvc-1", active_revision="m__isvc-1", copies=1),
            {"transitionStatus": "UpToDate", "states": {"activeModelState": "Loaded"}},
        ),
        (
            MeshModelState(
                pool_ready=True,
                revision="m__isvc-2",
                active_revision="m__isvc-1",
                active_copies=1,
                loading=True,
            ),
            {
                "transitionStatus": "InProgress",
                "states": {"activeModelState": "Loaded", "targetModelState": "Loading"},
            },
        ),
    ],
)
def test_target_model_state_only_while_not_up_to_date(state, expected):
    status = model_status(state)
    assert {k: status[k] for k in expected} == expected
    assert "lastFailureInfo" not in status


def test_a_failed_load_blocks_with_its_failure():
    status = model_status(
        MeshModelState(pool_ready=True, revision="m__isvc-1", failed_copies=1, failure=FAILURE)
    )
    assert status == {
        "transitionStatus": "BlockedByFailedLoad",
        "states": {"activeModelState": "FailedToLoad", "targetModelState": "FailedToLoad"},
        "copies": {"failedCopies": 1, "totalCopies": 0},
        "lastFailureInfo": {
            "reason": "ModelLoadFailed",
            "message": "bad file",
            "location": "pool-0",
            "modelRevisionName": "m__isvc-1",
            "time": "2024-01-01T00:00:00Z",
        },
    }


def test_a_new_version_that_failed_to_load_leaves_the_loaded_one_serving_and_ready():
    """ModelMesh Serving: BlockedByFailedLoad, the active model still Loaded, the service available."""
    from modelplane.control.modelmesh import mesh_service_status

    state = MeshModelState(
        pool_ready=True,
        revision="m__isvc-2",
        active_revision="m__isvc-1",
        active_copies=1,
        failed_copies=1,
        failure=FAILURE,
    )
    isvc = _isvc({"sklearn": {"storageUri": "s3://b/m"}}, {"serving.kserve.io/deploymentMode": "ModelMesh"})
    status = mesh_service_status(isvc, state, domain="localhost", port=8080, now="t")
    assert status["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert status["modelStatus"]["states"] == {
        "activeModelState": "Loaded",
        "targetModelState": "FailedToLoad",
    }
    conditions = {x["type"]: x["status"] for x in status["conditions"]}
    assert conditions["Ready"] == conditions["PredictorReady"] == "True"
    # With no version serving, the failure is the service's.
    alone = mesh_service_status(
        isvc,
        MeshModelState(pool_ready=True, revision="m__isvc-2", failure=FAILURE),
        domain="d",
        port=1,
        now="t",
    )
    assert {x["type"]: x["status"] for x in alone["conditions"]}["Ready"] == "False"


def test_a_copy_lost_when_its_replica_exited_is_the_last_failure():
    exit = Failure("RuntimeUnhealthy", "replica pool-0 exited with code 137 (OOMKilled)", 137, "t", "pool-0")
    status = model_status(
        MeshModelState(pool_ready=True, revision="m__isvc-1", exit=exit, exit_revision="m__isvc-1")
    )
    assert status["transitionStatus"] == "UpToDate"
    assert status["states"] == {"activeModelState": "Standby"}  # it loads again on its next request
    assert status["lastFailureInfo"] == {
        "reason": "RuntimeUnhealthy",
        "message": "replica pool-0 exited with code 137 (OOMKilled)",
        "location": "pool-0",
        "modelRevisionName": "m__isvc-1",
        "time": "t",
        "exitCode": 137,
    }
    # A failure to load is newer news than the exit.
    failed = model_status(MeshModelState(pool_ready=True, revision="m__isvc-1", exit=exit, failure=FAILURE))
    assert failed["lastFailureInfo"]["reason"] == "ModelLoadFailed"


def test_no_runtime_is_an_invalid_spec():
    invalid = Failure("NoSupportingRuntime", "No runtime found to support specified framework/version")
    status = model_status(MeshModelState(invalid=invalid))
    assert status["transitionStatus"] == "InvalidSpec"
    assert status["lastFailureInfo"]["reason"] == "NoSupportingRuntime"


def test_fields_a_pool_decides_are_said_to_be_ignored():
    from modelplane.control.modelmesh import ignored_fields, mesh_service_status

    isvc = _isvc(
        {"minReplicas": 2, "sklearn": {"storageUri": "s3://b/m", "resources": {"limits": {"cpu": "1"}}}},
        {"serving.kserve.io/deploymentMode": "ModelMesh"},
    )
    isvc["spec"]["transformer"] = {"containers": [{"image": "t"}]}
    assert ignored_fields(isvc) == (
        "spec.transformer",
        "spec.predictor.minReplicas",
        "spec.predictor.sklearn.resources",
    )
    status = mesh_service_status(
        isvc, MeshModelState(pool_ready=True), domain="localhost", port=8080, now="t"
    )
    honored = {c["type"]: c for c in status["conditions"]}["FieldsHonored"]
    assert (honored["status"], honored["reason"]) == ("False", "NotHonoredInModelMesh")
    assert "spec.predictor.minReplicas" in honored["message"]
    plain = _isvc({"sklearn": {"storageUri": "s3://b/m"}}, {"serving.kserve.io/deploymentMode": "ModelMesh"})
    assert ignored_fields(plain) == ()


def test_a_pool_whose_replicas_keep_failing_says_how_the_runtime_is_unhealthy():
    from modelplane.control.modelmesh import mesh_service_status
    from modelplane.control.observed import Termination
    from modelplane.control.status import exit_failure

    isvc = _isvc({"sklearn": {"storageUri": "s3://b/m"}}, {"serving.kserve.io/deploymentMode": "ModelMesh"})
    ended = Termination("Error", 127, "2026-01-01T00:00:00Z", "sh: 1: tritonserver: not found", "triton-0")
    state = MeshModelState(revision="m__isvc-1", pool_failure=exit_failure(ended))
    status = mesh_service_status(isvc, state, domain="localhost", port=8080, now="t")
    predictor = {c["type"]: c for c in status["conditions"]}["PredictorReady"]
    assert (predictor["status"], predictor["reason"]) == ("False", "RuntimeUnhealthy")
    assert predictor["message"].endswith(
        "pool is ready: replica triton-0 exited with code 127 (Error): sh: 1: tritonserver: not found"
    )
    failure = status["modelStatus"]["lastFailureInfo"]
    assert (failure["reason"], failure["exitCode"]) == ("RuntimeUnhealthy", 127)
    assert status["modelStatus"]["states"]["activeModelState"] == "Pending"
    starting = mesh_service_status(
        isvc, MeshModelState(revision="m__isvc-1"), domain="localhost", port=8080, now="t"
    )
    predictor = {c["type"]: c for c in starting["conditions"]}["PredictorReady"]
    assert (predictor["status"], predictor["reason"]) == ("Unknown", "RuntimeNotReady")


def test_a_storage_key_beside_a_storage_uri_gives_the_credentials():
    """The URI says where the model is and the key's document how to reach it (it is not dropped)."""
    from modelplane.local.controllers.trained_models import model_source
    from modelplane.storage import CredentialStore

    minio = {"type": "s3", "endpoint_url": "http://127.0.0.1:9000", "bucket": "models"}
    store = CredentialStore(documents={"minio": minio})
    both = {"storageUri": "s3://elsewhere/iris", "storage": {"key": "minio"}}
    source = model_source(storage_argument(both), lambda: store)
    assert (source.uri, source.config["endpoint_url"]) == ("s3://elsewhere/iris", "http://127.0.0.1:9000")
    key_only = model_source(storage_argument({"storage": {"key": "minio", "path": "a/b"}}), lambda: store)
    assert key_only.uri == "s3://models/a/b"
    assert model_source(storage_argument({"storageUri": "pvc://claim/m"})).uri == "pvc://claim/m"


def test_the_secret_key_annotation_gives_a_storage_uri_its_credentials():
    """ModelMesh Serving's `serving.kserve.io/secretKey`: the storage-config key of a storageUri."""
    from modelplane.local.controllers.trained_models import model_source
    from modelplane.storage import CredentialStore

    minio = {"type": "s3", "endpoint_url": "http://127.0.0.1:9000", "bucket": "models"}
    store = CredentialStore(documents={"localMinIO": minio})
    isvc = _isvc(
        {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/iris"}},
        {"serving.kserve.io/deploymentMode": "ModelMesh", "serving.kserve.io/secretKey": "localMinIO"},
    )
    model = mesh_model(isvc)
    assert model["storage"] == {"key": "localMinIO"}
    source = model_source(storage_argument(model), lambda: store)
    assert (source.uri, source.config["endpoint_url"]) == ("s3://models/iris", "http://127.0.0.1:9000")
    # The spec's own key wins over the annotation, as in ModelMesh Serving.
    isvc["spec"]["predictor"]["model"]["storage"] = {"key": "other"}
    assert mesh_model(isvc)["storage"] == {"key": "other"}


@pytest.mark.parametrize(
    ("uri", "entry"),
    [
        ("s3://models/iris", "default_s3"),
        ("gs://models/iris", "default_gcs"),
        ("https://example.com/iris.joblib", "default_http"),
        ("https://acct.blob.core.windows.net/models/iris", "default_azure"),
    ],
)
def test_a_storage_uri_without_a_key_reads_the_default_entry_of_its_type(uri, entry):
    """As ModelMesh's puller: a model with no storage key reads `default_<type>` of storage-config,
    the type its URI's; the URI still says where the model is."""
    from modelplane.local.controllers.trained_models import model_source
    from modelplane.storage import CredentialStore

    store = CredentialStore(documents={entry: {"endpoint_url": "http://127.0.0.1:9000"}})
    source = model_source(storage_argument({"storageUri": uri}), lambda: store)
    assert (source.uri, source.config["endpoint_url"]) == (uri, "http://127.0.0.1:9000")
    # No such entry: the URI alone, as before.
    assert (
        model_source(storage_argument({"storageUri": uri}), lambda: CredentialStore(documents={})).uri == uri
    )


@pytest.mark.parametrize(
    ("uri", "schema_uri"),
    [
        ("s3://models/sklearn/iris", "s3://models/schemas/iris.json"),
        ("gs://models/iris", "gs://models/schemas/iris.json"),
        ("pvc://claim/sklearn/iris", "pvc://claim/schemas/iris.json"),
        ("https://example.com:8443/models/iris.joblib", "https://example.com:8443/schemas/iris.json"),
        (
            "https://acct.blob.core.windows.net/models/iris?sv=x",
            "https://acct.blob.core.windows.net/models/schemas/iris.json?sv=x",
        ),
    ],
)
def test_a_schema_path_is_in_the_storage_the_model_is_in(uri, schema_uri):
    """ModelMesh Serving's schemaPath: a path in the bucket, claim, web server or Azure container of
    the storageUri (its puller fetches it from the same storage), with the model's credentials."""
    from modelplane.local.controllers.trained_models import model_source
    from modelplane.storage import CredentialStore

    store = CredentialStore(documents={"key": {"endpoint_url": "http://127.0.0.1:9000"}})
    model = {"storageUri": uri, "storage": {"key": "key", "schemaPath": "/schemas/iris.json"}}
    source = model_source(schema_argument(model), lambda: store)
    assert (source.uri, source.config["endpoint_url"]) == (schema_uri, "http://127.0.0.1:9000")
    assert model_source(storage_argument(model), lambda: store).uri == uri  # the model's own


def test_a_schema_path_of_a_storage_spec_is_a_path_in_its_bucket():
    from modelplane.local.controllers.trained_models import model_source
    from modelplane.storage import CredentialStore

    store = CredentialStore(documents={"minio": {"type": "s3", "bucket": "models"}})
    model = {"storage": {"key": "minio", "path": "sklearn/iris", "schemaPath": "schemas/iris.json"}}
    assert model_source(schema_argument(model), lambda: store).uri == "s3://models/schemas/iris.json"
    assert model_source(storage_argument(model), lambda: store).uri == "s3://models/sklearn/iris"
    assert schema_argument({"storage": {"key": "minio", "path": "sklearn/iris"}}) == ""


def test_the_schema_path_annotation_is_the_models_schema_and_changes_its_version():
    """ModelMesh Serving's `serving.kserve.io/schemaPath`, where `storage.schemaPath` is not given."""
    annotations = {"serving.kserve.io/deploymentMode": "ModelMesh", "serving.kserve.io/schemaPath": "s.json"}
    isvc = _isvc({"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://b/iris"}}, annotations)
    model = mesh_model(isvc)
    assert model["storage"] == {"schemaPath": "s.json"}
    assert schema_argument(model) == json.dumps(
        {"storage": {"parameters": {"type": "s3"}}, "storageUri": "s3://b/s.json"}, sort_keys=True
    )
    without = _isvc({"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://b/iris"}})
    assert model_digest(model) != model_digest(mesh_model(without))
    isvc["spec"]["predictor"]["model"]["storage"] = {"schemaPath": "own.json"}
    assert mesh_model(isvc)["storage"] == {"schemaPath": "own.json"}  # the field wins


def test_a_schema_path_beside_a_storage_uri_of_no_storage_is_an_invalid_spec():
    with pytest.raises(RuntimeSelectionError) as caught:
        schema_argument({"storageUri": "/models/iris", "storage": {"schemaPath": "s.json"}})
    assert caught.value.reason == "InvalidPredictorSpec"
    assert "storageUri /models/iris is none ModelMesh fetches from" in caught.value.message


def test_an_invalid_spec_leaves_the_loaded_version_serving_and_ready():
    """As ModelMesh Serving: a spec no runtime serves (a runtime's name mistyped) is not transitioned
    to; the model of the last valid spec, loaded, answers on (`InvalidSpec`, `activeModelState: Loaded`)."""
    from modelplane.control.modelmesh import mesh_service_status

    invalid = Failure("RuntimeNotRecognized", "Waiting for runtime to become available")
    state = MeshModelState(
        invalid=invalid, pool_ready=True, revision="m__isvc-1", active_revision="m__isvc-1", copies=1
    )
    status = mesh_service_status(
        _isvc({"sklearn": {"storageUri": "s3://b/m", "runtime": "typo"}}),
        state,
        domain="localhost",
        port=8080,
        now="t",
    )
    model = status["modelStatus"]
    assert model["transitionStatus"] == "InvalidSpec"
    assert model["states"] == {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"}
    assert model["copies"]["totalCopies"] == 1
    assert model["lastFailureInfo"]["reason"] == "RuntimeNotRecognized"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert status["url"] == "http://m.default.localhost:8080"
    # With nothing loaded, the invalid spec is the service's state.
    nothing = mesh_service_status(
        _isvc({"sklearn": {"storageUri": "s3://b/m"}}),
        MeshModelState(invalid=invalid, pool_ready=True),
        domain="localhost",
        port=8080,
        now="t",
    )
    assert {c["type"]: c["status"] for c in nothing["conditions"]}["Ready"] == "False"
    assert nothing["modelStatus"]["states"]["activeModelState"] == ""


def test_the_serving_runtime_annotation_names_a_framework_predictors_runtime():
    """ModelMesh Serving's way to pick the runtime of a `sklearn:` predictor, which has no `runtime`."""
    first, second = _runtime("first", multiModel=True), _runtime("second", multiModel=True)
    annotation = {"serving.kserve.io/servingRuntime": "second"}
    isvc = _isvc({"sklearn": {"storageUri": "pvc://m/x"}}, annotation)
    assert select_pool_runtime(isvc, [first, second], []).name == "second"
    missing = _isvc({"sklearn": {"storageUri": "pvc://m/x"}}, {"serving.kserve.io/servingRuntime": "gone"})
    with pytest.raises(RuntimeSelectionError) as caught:
        select_pool_runtime(missing, [first, second], [])
    assert caught.value.reason == "RuntimeNotRecognized"


def test_the_serving_runtime_annotation_beside_a_model_spec_is_invalid_as_in_modelmesh():
    first = _runtime("first", multiModel=True)
    model = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://m/x"}}
    isvc = _isvc(model, {"serving.kserve.io/servingRuntime": "first"})
    with pytest.raises(RuntimeSelectionError) as caught:
        select_pool_runtime(isvc, [first], [])
    assert caught.value.reason == "InvalidPredictorSpec"
    assert "spec.predictor.model.runtime" in caught.value.message
