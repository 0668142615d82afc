"""The ClusterServingRuntimes modelplane ships, and their container templates."""

from __future__ import annotations

import pytest

from modelplane.api import (
    TemplateError,
    admit,
    builtin_cluster_runtimes,
    builtin_runtime_names,
    load_path,
    render,
    render_container,
)
from modelplane.api.quantity import parse_quantity

from .helpers import KSERVE_RUNTIMES

KSERVE = {doc.resource["metadata"]["name"]: doc.resource for doc in load_path(KSERVE_RUNTIMES)}


def by_name() -> dict:
    return {r["metadata"]["name"]: r for r in builtin_cluster_runtimes()}


def test_the_shipped_runtimes():
    assert builtin_runtime_names() == [
        "kserve-huggingfaceserver",
        "kserve-lgbserver",
        "kserve-paddleserver",
        "kserve-pmmlserver",
        "kserve-sklearnserver",
        "kserve-torchserve",
        "kserve-xgbserver",
        "mlserver-1.x",
        "modelplane-mlflowserver",
        "modelplane-onnxserver",
        "modelplane-tensorflowserver",
        "torchserve-0.x",
        "triton-2.x",
    ]


# ModelMesh Serving's multi-model runtimes, by its names: the formats it gives each (first) and the
# newer versions modelplane also serves.
MODELMESH_FORMATS = {
    "mlserver-1.x": {"sklearn:0", "sklearn:1", "xgboost:1", "xgboost:2", "lightgbm:3", "lightgbm:4"},
    "triton-2.x": {"onnx:1", "pytorch:1", "pytorch:2", "tensorflow:1", "tensorflow:2"},
    "torchserve-0.x": {"pytorch-mar:0"},
}


@pytest.mark.parametrize("name", sorted(MODELMESH_FORMATS))
def test_modelmesh_runtimes_are_multi_model_servers_of_any_framework(name):
    spec = by_name()[name]["spec"]
    assert spec["multiModel"] is True
    formats = {f"{f['name']}:{f['version']}" for f in spec["supportedModelFormats"] if f["autoSelect"]}
    assert formats == MODELMESH_FORMATS[name]
    (container,) = spec["containers"]
    assert container["command"] == ["modelplane", "serve"]
    # No --runtime: a replica holds models of every format the runtime lists.
    assert not any(arg.startswith(("--runtime", "--model-name")) for arg in container["args"])
    memory = parse_quantity(container["resources"]["limits"]["memory"])
    assert 0 < spec["builtInAdapter"]["memBufferBytes"] < memory


@pytest.mark.parametrize(
    "name",
    [
        "kserve-sklearnserver",
        "kserve-xgbserver",
        "kserve-lgbserver",
        "kserve-pmmlserver",
        "kserve-paddleserver",
    ],
)
def test_kserve_names_keep_kserve_formats_priorities_and_protocols(name):
    ours, theirs = by_name()[name], KSERVE[name]
    for key in ("supportedModelFormats", "protocolVersions", "annotations"):
        assert ours["spec"][key] == theirs["spec"][key]
    assert ours["metadata"] == theirs["metadata"]


def test_huggingfaceserver_keeps_kserve_s_formats_protocols_and_metadata():
    ours, theirs = by_name()["kserve-huggingfaceserver"], KSERVE["kserve-huggingfaceserver"]
    for key in ("supportedModelFormats", "protocolVersions", "annotations"):
        assert ours["spec"][key] == theirs["spec"][key]
    assert ours["metadata"] == theirs["metadata"]


def test_torchserve_keeps_kserve_s_formats_and_protocols():
    """Its metrics are on the server's own port, not TorchServe's metrics port."""
    ours, theirs = by_name()["kserve-torchserve"], KSERVE["kserve-torchserve"]
    for key in ("supportedModelFormats", "protocolVersions"):
        assert ours["spec"][key] == theirs["spec"][key]
    assert ours["metadata"] == theirs["metadata"]


@pytest.mark.parametrize(
    ("name", "runtime"),
    [
        ("kserve-sklearnserver", "sklearn"),
        ("kserve-xgbserver", "xgboost"),
        ("kserve-lgbserver", "lightgbm"),
        ("kserve-pmmlserver", "pmml"),
        ("kserve-paddleserver", "paddle"),
        ("modelplane-onnxserver", "onnx"),
        ("modelplane-mlflowserver", "mlflow"),
        ("kserve-torchserve", "pytorch"),
        ("modelplane-tensorflowserver", "tensorflow"),
        ("kserve-huggingfaceserver", "huggingface"),
    ],
)
def test_each_runs_modelplane_serve(name, runtime):
    (container,) = by_name()[name]["spec"]["containers"]
    assert container["name"] == "kserve-container"
    assert container["command"] == ["modelplane", "serve"]
    assert container["args"] == [
        "--model-dir=/mnt/models",
        "--model-name={{.Name}}",
        f"--runtime={runtime}",
        "--http-port=8080",
        "--grpc-port=8081",
    ]


def test_onnx_runtime():
    spec = by_name()["modelplane-onnxserver"]["spec"]
    assert spec["supportedModelFormats"] == [
        {"name": "onnx", "version": "1", "autoSelect": True, "priority": 1}
    ]
    assert spec["protocolVersions"] == ["v1", "v2", "grpc-v2"]


def test_mlflow_runtime_takes_what_kserves_mlserver_takes():
    spec = by_name()["modelplane-mlflowserver"]["spec"]
    assert spec["supportedModelFormats"] == [
        {"name": "mlflow", "version": version, "autoSelect": True, "priority": 1} for version in ("1", "2")
    ]
    assert spec["protocolVersions"] == ["v1", "v2", "grpc-v2"]


def test_tensorflow_runtime():
    runtime = by_name()["modelplane-tensorflowserver"]
    assert runtime["spec"]["supportedModelFormats"] == [
        {"name": "tensorflow", "version": "1", "autoSelect": True, "priority": 1},
        {"name": "tensorflow", "version": "2", "autoSelect": True, "priority": 1},
    ]
    assert runtime["spec"]["protocolVersions"] == ["v1", "v2", "grpc-v1", "grpc-v2"]
    assert runtime["metadata"]["annotations"] == {"serving.kserve.io/server-type": "tensorflowserver"}


def test_shipped_runtimes_pass_admission_together():
    runtimes = builtin_cluster_runtimes()
    for runtime in runtimes:
        admit(runtime, existing=runtimes)


def test_copies_are_independent():
    builtin_cluster_runtimes()[0]["metadata"]["name"] = "changed"
    assert builtin_runtime_names()[0] == "kserve-huggingfaceserver"


def test_render_placeholders():
    metadata = {
        "name": "iris",
        "namespace": "team",
        "labels": {"modelClass": "mlserver_sklearn.SKLearnModel"},
        "annotations": {"modelFormat": "sklearn"},
    }
    assert render("--model_name={{.Name}}", metadata) == "--model_name=iris"
    assert render("{{ .Namespace }}/{{.Annotations.modelFormat}}", metadata) == "team/sklearn"
    assert render("{{.Labels.modelClass}}", metadata) == "mlserver_sklearn.SKLearnModel"
    assert render("no placeholders", metadata) == "no placeholders"


def test_a_missing_label_or_annotation_renders_as_nothing_as_kserves_html_template_gives():
    # KServe renders with Go's html/template, which drops a missing value (text/template would print
    # `<no value>`): kserve-mlserver's MLSERVER_MODEL_IMPLEMENTATION={{.Labels.modelClass}} is empty.
    assert render("--class={{.Labels.modelClass}}", {"name": "iris"}) == "--class="
    assert render("{{.Annotations.missing}}", {"name": "iris", "annotations": {}}) == ""


def test_a_value_is_html_escaped_as_kserves_html_template_escapes_it():
    metadata = {"name": "iris", "annotations": {"url": "http://h/?a=1&b=2", "quote": 'it\'s "x"+<y>'}}
    assert render("{{.Annotations.url}}", metadata) == "http://h/?a=1&amp;b=2"
    assert render("{{.Annotations.quote}}", metadata) == "it&#39;s &#34;x&#34;&#43;&lt;y&gt;"


def test_a_backslash_in_a_value_reads_as_a_json_escape_and_a_newline_is_an_error():
    # The value goes into the container's JSON text as it is, and that text is parsed back.
    assert render("{{.Annotations.path}}", {"annotations": {"path": "C:\\\\dir"}}) == "C:\\dir"
    with pytest.raises(TemplateError, match="not valid JSON"):
        render("{{.Annotations.text}}", {"annotations": {"text": "two\nlines"}})


def test_render_index_reaches_keys_a_field_name_cannot_spell_with_the_key_in_backquotes():
    metadata = {"name": "iris", "annotations": {"serving.kserve.io/size": "small"}}
    assert render("--size={{ index .Annotations `serving.kserve.io/size` }}", metadata) == "--size=small"
    assert render("{{index .Labels `missing`}}", metadata) == ""  # a map's zero value, as `index` gives
    with pytest.raises(TemplateError):
        render("{{index .Spec `x`}}", metadata)


def test_index_with_a_double_quoted_key_is_refused_as_kserves_controller_cannot_parse_it():
    # In the container's JSON the quotes read \", which Go's template parser refuses.
    with pytest.raises(TemplateError, match="backquotes"):
        render('{{index .Annotations "serving.kserve.io/size"}}', {"annotations": {}})


def test_a_key_that_is_not_a_go_identifier_is_refused_after_a_dot():
    with pytest.raises(TemplateError):
        render("{{.Labels.model-class}}", {"labels": {"model-class": "x"}})


def test_render_a_container():
    (container,) = by_name()["kserve-sklearnserver"]["spec"]["containers"]
    rendered = render_container(container, {"name": "iris"})
    assert "--model-name=iris" in rendered["args"]
    assert "--model-name={{.Name}}" in container["args"]


def test_unknown_placeholders_are_errors():
    with pytest.raises(TemplateError):
        render("{{.Spec.Predictor}}", {"name": "x"})


def test_go_template_actions_render_as_kserves_html_template_renders_them():
    metadata = {"name": "iris", "namespace": "prod", "labels": {"tier": "gold"}, "annotations": {"n": "3"}}
    assert render("{{printf `%s.%s` .Name .Namespace}}", metadata) == "iris.prod"
    assert (
        render("{{if eq .Namespace `prod`}}--workers=4{{else}}--workers=1{{end}}", metadata) == "--workers=4"
    )
    assert (
        render("{{with .Labels.tier}}--tier={{.}}{{end}}{{with .Labels.none}}x{{end}}", metadata)
        == "--tier=gold"
    )
    assert render("{{range $k, $v := .Labels}}{{$k}}={{$v}}{{end}}", metadata) == "tier=gold"
    assert render("{{len .Labels}} {{.Name | printf `%q`}}", metadata) == "1 &#34;iris&#34;"  # escaped
    assert render("{{`a` -}} {{- `b`}}", metadata) == "ab"


def test_a_placeholder_kserve_cannot_render_says_what_go_says():
    with pytest.raises(TemplateError) as refused:
        render("{{.Spec}}", {"name": "x"})
    assert str(refused.value) == (
        'template: container-tmpl:1:3: executing "container-tmpl" at <.Spec>: can\'t evaluate field Spec in '
        "type v1.ObjectMeta"
    )
    with pytest.raises(TemplateError, match='function "upper" not defined'):
        render("{{upper .Name}}", {"name": "x"})
