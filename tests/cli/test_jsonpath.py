"""kubectl's JSONPath templates (`modelplane get -o jsonpath=...`), evaluated on plain objects."""

from __future__ import annotations

import pytest

from modelplane.api.jsonpath import (
    ExecutionError,
    TemplateError,
    custom_columns,
    evaluate,
    parse_template,
    render_template,
)

SERVICE = {
    "kind": "InferenceService",
    "metadata": {
        "name": "iris",
        "generation": 3,
        "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
        "deletionTimestamp": None,
    },
    "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
    "status": {
        "conditions": [
            {"type": "PredictorReady", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "Loading"},
        ],
        "components": {"predictor": {"traffic": [{"percent": 90}, {"percent": 10, "tag": "prev"}]}},
    },
}


@pytest.mark.parametrize(
    ("template", "printed"),
    [
        ("{.metadata.name}", "iris"),
        ("{.metadata.deletionTimestamp}", "null"),  # as kubectl prints a JSON null
        ("{$.kind}", "InferenceService"),
        ("{.status.url}", ""),
        ('{.status.conditions[?(@.type=="Ready")].reason}', "Loading"),
        ("{.status.conditions[?(@.type!='Ready')].type}", "PredictorReady"),
        ("{.status.conditions[*].type}", "PredictorReady Ready"),
        ("{.status.conditions[-1].status}", "False"),
        ("{.status.conditions[0:1].type}", "PredictorReady"),
        ("{.status.components.predictor.traffic[?(@.percent>50)].percent}", "90"),
        ("{.status.components.predictor.traffic[?(@.tag)].percent}", "10"),
        ("{.metadata.annotations.serving\\.kserve\\.io/deploymentMode}", "Standard"),
        ("{.metadata.annotations['serving.kserve.io/deploymentMode']}", "Standard"),
        ("{.spec.predictor.model}", '{"modelFormat":{"name":"sklearn"}}'),
        ("{..name}", "iris sklearn"),
        ("gen {.metadata.generation}{'\\n'}", "gen 3\n"),
        ('{range .status.conditions[*]}{.type}={.status}{";"}{end}', "PredictorReady=True;Ready=False;"),
        ("{true} {1}", "true 1"),
        # A union: what its first part reaches from every item, then its second (checked against kubectl).
        ("{.status.conditions[*]['type','status']}", "PredictorReady Ready True False"),
        ("{.status.conditions[1,0].type}", "Ready PredictorReady"),
        ("{range .status.conditions[*]}{['type', 'status']}{';'}{end}", "PredictorReady True;Ready False;"),
        ("{.metadata['missing','name']}", "iris"),
        # `..` inside a filter (kubectl's too).
        ("{.status.conditions[?(@..reason=='Loading')].type}", "Ready"),
    ],
)
def test_templates_print_as_kubectl_prints_them(template, printed):
    assert render_template(parse_template(template), SERVICE) == printed


def test_nested_ranges():
    data = {"items": [SERVICE, {**SERVICE, "metadata": {"name": "wine"}}]}
    template = "{range .items[*]}{.metadata.name}:{range .status.conditions[*]}{.type},{end};{end}"
    assert render_template(parse_template(template), data) == (
        "iris:PredictorReady,Ready,;wine:PredictorReady,Ready,;"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.kind", "error parsing jsonpath {.kind, unclosed action"),
        ("{range .items[*]}{.x}", "error parsing jsonpath {range .items[*]}{.x}, unclosed range"),
        ("{.x}{end}", "error parsing jsonpath {.x}{end}, not in range"),
        ("{.a[?(@.b==x)]}", "error parsing jsonpath {.a[?(@.b==x)]}, unrecognized literal in filter: 'x'"),
        (
            "{.items[].name}",
            "error parsing jsonpath {.items[].name}, [] names no item (kubectl reads it as [0]): write [0] "
            "for the first, or [*] for every one",
        ),
    ],
)
def test_templates_kubectl_refuses(template, message):
    with pytest.raises(TemplateError) as refused:
        parse_template(template)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.metadata[0]}", "map[string]interface {} is not array or slice"),
        ("{.metadata.name[*]}", "string is not array or slice"),
        ("{.metadata.generation[1:]}", "int64 is not array or slice"),
        ("{range .spec[?(@.x)]}{end}", "map[predictor:map[model:map[modelFormat:map[name:sklearn]]]] is not array "
         "or slice and cannot be filtered"),
        # A filter compares one value: a path that reaches several fails, as kubectl's does.
        ("{.status.conditions[?(@.*=='Ready')].type}", "can only compare one element at a time"),
    ],
)  # fmt: skip
def test_an_index_or_a_filter_on_what_is_not_a_list_fails_as_kubectl_fails(template, message):
    with pytest.raises(ExecutionError) as failed:
        render_template(parse_template(template), SERVICE)
    assert str(failed.value) == message


ARGS = {"args": ["a", "b", "c"]}


@pytest.mark.parametrize(
    ("template", "printed"),
    [
        ("{.args[::2]}", "a c"),
        ("{.args[1::]}", "b c"),
        ("{.args[-1]}", "c"),
        ("{.args[0:-1]}", "a b"),
        ("{.args[1:1]}", ""),
        ("{.args[?(@=='b')]}", "b"),
        ("{.args[?(@!='b')]}", "a c"),
    ],
)
def test_steps_and_filters_on_the_items_themselves(template, printed):
    assert render_template(parse_template(template), ARGS) == printed


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.args[3]}", "array index out of bounds: index 3, length 3"),
        ("{.args[-9]}", "array index out of bounds: index -6, length 3"),
        ("{.args[1:9]}", "array index out of bounds: index 8, length 3"),
        ("{.args[2:1]}", "starting index 2 is greater than ending index 1"),
        ("{.args[::0]}", "step must be > 0"),
    ],
)
def test_indexes_out_of_bounds_fail_as_kubectl_fails(template, message):
    with pytest.raises(ExecutionError) as failed:
        render_template(parse_template(template), ARGS)
    assert str(failed.value) == message


def test_a_missing_field_or_a_null_indexed_or_filtered_is_nothing_and_so_is_a_lone_dot():
    template = "{.status.missing[0]}{.metadata.deletionTimestamp[?(@.x)]}{.}|{.status.conditions[*].type}"
    assert render_template(parse_template(template), SERVICE) == "|PredictorReady Ready"


def test_custom_columns_take_paths_with_or_without_braces_and_the_leading_dot():
    columns = custom_columns("NAME:.metadata.name,GEN:{.metadata.generation},KIND:kind")
    assert [header for header, _ in columns] == ["NAME", "GEN", "KIND"]
    assert [evaluate(steps, SERVICE) for _, steps in columns] == [["iris"], [3], ["InferenceService"]]
    with pytest.raises(TemplateError):
        custom_columns("NAME")
