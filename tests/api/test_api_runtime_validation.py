"""ServingRuntime and ClusterServingRuntime webhook rules."""

from __future__ import annotations

from modelplane.api import FieldError, admit, builtin_cluster_runtimes

from .helpers import fields, messages, rejection, sample


def runtime(
    name: str = "rt", *formats: dict, kind: str = "ServingRuntime", protocols=("v1",), **spec
) -> dict:
    metadata = {"name": name}
    if kind == "ServingRuntime":
        metadata["namespace"] = "default"
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": {
            "supportedModelFormats": list(formats) or [fmt("sklearn", "1", 1)],
            "protocolVersions": list(protocols),
            "containers": [{"name": "kserve-container", "image": "img"}],
            **spec,
        },
    }


def fmt(name: str, version: str | None, priority: int | None, auto_select: bool = True) -> dict:
    entry: dict = {"name": name, "autoSelect": auto_select}
    if version is not None:
        entry["version"] = version
    if priority is not None:
        entry["priority"] = priority
    return entry


def test_sample_runtime_is_admitted():
    admit(sample("serving-runtime.yaml"))


def test_same_format_in_one_runtime_needs_one_priority():
    resource = runtime("rt", fmt("sklearn", "0", 1), fmt("sklearn", "1", 2))
    assert rejection(resource).errors[0] == FieldError(
        "spec.supportedModelFormats",
        "different priorities assigned for the model format sklearn under the servingruntime rt",
    )


def test_equal_priorities_across_runtimes_of_a_namespace():
    other = runtime("other")
    assert messages(runtime("rt"), existing=[other]) == [
        "same priority assigned for the model format sklearn in the servingruntimes other and rt in namespace default"
    ]


def test_equal_priorities_across_cluster_runtimes():
    existing = builtin_cluster_runtimes()
    resource = runtime("mine", kind="ClusterServingRuntime", protocols=("v2",))
    assert messages(resource, existing=existing) == [
        "same priority assigned for the model format sklearn in the clusterservingruntimes kserve-sklearnserver and mine"
    ]


def test_priorities_do_not_clash_when_something_differs():
    base = runtime("other")
    admit(runtime("rt", fmt("sklearn", "1", 2)), existing=[base])  # another priority
    admit(runtime("rt", fmt("sklearn", "0", 1)), existing=[base])  # another version
    admit(runtime("rt", protocols=("v2",)), existing=[base])  # no shared protocol
    admit(runtime("rt", multiModel=True), existing=[base])  # multi-model
    admit(runtime("rt", fmt("sklearn", "1", 1, auto_select=False)), existing=[base])
    admit(runtime("rt"), existing=[runtime("rt")])  # itself, on update
    admit(runtime("rt"), existing=[runtime("other", disabled=True)])
    admit(runtime("rt", disabled=True), existing=[base])


def test_blocked_env_vars():
    resource = runtime()
    resource["spec"]["containers"][0]["env"] = [{"name": "PYTHONPATH", "value": "/x"}]
    assert rejection(resource).errors[0] == FieldError(
        "spec.containers[0].env[0]",
        'the ServingRuntime "rt" is invalid: setting PYTHONPATH in container "kserve-container" is not allowed '
        "for security reasons",
    )


def test_worker_spec_rules():
    resource = runtime(
        workerSpec={
            "containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}],
            "pipelineParallelSize": 0,
        }
    )
    assert messages(resource) == [
        "the ServingRuntime rt is invalid: setting multiple containers in workerSpec is not allowed",
        "the ServingRuntime rt is invalid: the WorkerSpec.PipelineParallelSize cannot be less than 1(0)",
    ]


def test_worker_spec_cannot_be_removed():
    old = admit(runtime(workerSpec={"containers": [{"name": "w", "image": "w"}]}))
    assert messages(runtime(), old=old) == [
        "the ServingRuntime rt is invalid: removing workerSpec where it already exists is not allowed"
    ]


def test_containers_are_required():
    resource = runtime()
    del resource["spec"]["containers"]
    assert fields(resource) == ["spec.containers"]


def test_priority_minimum_is_in_the_schema():
    error = rejection(runtime("rt", fmt("sklearn", "1", 0))).errors[0]
    assert error == FieldError(
        "spec.supportedModelFormats[0].priority", "Invalid value: 0: should be greater than or equal to 1"
    )


def test_runtime_names_follow_the_api_server_rule():
    assert fields(runtime("My_Runtime")) == ["metadata.name"]


def test_a_model_loading_timeout_is_a_number_of_milliseconds_above_zero():
    admit(runtime("rt", multiModel=True, builtInAdapter={"modelLoadingTimeoutMillis": 30000}))
    for wrong in (0, -5):  # (a string is refused by the schema's type)
        refused = runtime("rt", multiModel=True, builtInAdapter={"modelLoadingTimeoutMillis": wrong})
        error = rejection(refused).errors[0]
        assert error.path == "spec.builtInAdapter.modelLoadingTimeoutMillis"
        assert error.message.endswith(
            f"modelLoadingTimeoutMillis must be a number of milliseconds above 0, not {wrong!r}"
        )
