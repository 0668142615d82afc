"""Reading resources from YAML: every problem names its file and line."""

from __future__ import annotations

import pytest

from modelplane.api import FieldError, LoadError, load_file, load_path, load_text

ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris
spec:
  predictor:
    sklearn:
      storageUri: file:///models/iris
"""


def load_error(text: str, source: str = "x.yaml") -> LoadError:
    with pytest.raises(LoadError) as caught:
        load_text(text, source)
    return caught.value


def test_one_document():
    (document,) = load_text(ISVC, "iris.yaml")
    assert document.resource["spec"]["predictor"]["sklearn"]["storageUri"] == "file:///models/iris"
    assert (document.source, document.line) == ("iris.yaml", 1)


def test_several_documents_and_empty_ones():
    text = f"---\n{ISVC}---\n# only a comment\n---\n{ISVC.replace('sklearn-iris', 'second')}"
    documents = load_text(text)
    assert [d.resource["metadata"]["name"] for d in documents] == ["sklearn-iris", "second"]
    assert [d.line for d in documents] == [2, 13]


def test_a_list_is_unpacked():
    text = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        f"  - apiVersion: serving.kserve.io/v1alpha1\n    kind: TrainedModel\n    metadata:\n      name: m{i}\n"
        for i in range(2)
    )
    assert [d.resource["metadata"]["name"] for d in load_text(text)] == ["m0", "m1"]


def test_json_is_read_too():
    (document,) = load_text('{"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "n"}}')
    assert document.resource["kind"] == "K"


def test_a_syntax_error_names_file_and_line():
    error = load_error(ISVC.replace("storageUri: file", "storageUri: a: file", 1))
    assert str(error) == "x.yaml:8: mapping values are not allowed here"
    assert (error.source, error.line) == ("x.yaml", 8)


def test_an_unclosed_bracket_names_where_the_text_ends():
    error = load_error(ISVC.replace("    sklearn:", "    sklearn: [", 1))
    assert str(error).startswith("x.yaml:9: expected ',' or ']'")


def test_bad_indentation_names_the_line():
    error = load_error("apiVersion: v1\nkind: X\nmetadata:\n  name: a\n   bad: 1\n")
    assert str(error).startswith("x.yaml:5: ")


def test_duplicate_keys_are_rejected():
    text = ISVC + "  predictor:\n    xgboost: {}\n"
    assert str(load_error(text)) == 'x.yaml:9: key "predictor" already set in this mapping (first at line 6)'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "x.yaml:1: a resource must be a mapping, not a list"),
        ("just text\n", "x.yaml:1: a resource must be a mapping, not a string"),
        ("kind: InferenceService\nmetadata:\n  name: a\n", "x.yaml:1: resource has no apiVersion"),
        ("apiVersion: v1\nmetadata:\n  name: a\n", "x.yaml:1: resource has no kind"),
        ("apiVersion: v1\nkind: X\n", "x.yaml:1: X has no metadata"),
        ("apiVersion: v1\nkind: X\nmetadata:\n  labels: {}\n", "x.yaml:3: X has no metadata.name"),
        ("---\napiVersion: v1\nkind: X\nmetadata:\n  name: ''\n", "x.yaml:4: X has no metadata.name"),
    ],
)
def test_documents_without_identity_are_rejected(text, message):
    assert str(load_error(text)) == message


def test_timestamps_stay_strings():
    (document,) = load_text(
        ISVC.replace("metadata:\n", "metadata:\n  creationTimestamp: 2024-05-01T10:00:00Z\n")
    )
    assert document.resource["metadata"]["creationTimestamp"] == "2024-05-01T10:00:00Z"


def test_merge_keys_are_honoured():
    text = ISVC + "  base: &base\n    a: 1\n    b: 2\n  derived:\n    <<: *base\n    b: 3\n"
    (document,) = load_text(text)
    assert document.resource["spec"]["derived"] == {"a": 1, "b": 3}


def test_non_string_keys_become_strings():
    (document,) = load_text(ISVC + "  extra:\n    1: one\n    true: yes\n")
    assert document.resource["spec"]["extra"] == {"1": "one", "true": True}


def test_line_of_a_field():
    (document,) = load_text(ISVC, "iris.yaml")
    assert document.line_of("spec.predictor.sklearn.storageUri") == 8
    assert document.line_of("spec.predictor.model.storageUri") == 6  # not in the text: its nearest ancestor
    error = FieldError("spec.predictor.sklearn.storageUri", "bad")
    assert document.describe(error) == "iris.yaml:8: spec.predictor.sklearn.storageUri: bad"


def test_line_of_list_items_and_bracketed_keys():
    text = (
        "apiVersion: v1\nkind: X\nmetadata:\n  name: a\n  annotations:\n    serving.kserve.io/x: y\n"
        "spec:\n  containers:\n    - name: a\n    - name: b\n      env:\n        - name: E\n"
    )
    (document,) = load_text(text)
    assert document.line_of("metadata.annotations[serving.kserve.io/x]") == 6
    assert document.line_of("spec.containers[1].env[0].name") == 12


def test_load_file_and_missing_file(tmp_path):
    path = tmp_path / "iris.yaml"
    path.write_text(ISVC)
    assert load_file(path)[0].source == str(path)
    with pytest.raises(LoadError) as caught:
        load_file(tmp_path / "missing.yaml")
    assert str(caught.value) == f"{tmp_path / 'missing.yaml'}: no such file or directory"


def test_load_a_folder_in_name_order(tmp_path):
    (tmp_path / "b.yaml").write_text(ISVC.replace("sklearn-iris", "b"))
    (tmp_path / "a.yml").write_text(ISVC.replace("sklearn-iris", "a"))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.json").write_text('{"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "c"}}')
    assert [d.resource["metadata"]["name"] for d in load_path(tmp_path)] == ["a", "b"]
    assert [d.resource["metadata"]["name"] for d in load_path(tmp_path, recursive=True)] == ["a", "b", "c"]


def test_a_bad_file_in_a_folder_is_named(tmp_path):
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: [\n")
    with pytest.raises(LoadError) as caught:
        load_path(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'bad.yaml'}:")


def alias_bomb(levels: int) -> str:
    """The 'billion laughs': each level lists the one before nine times."""
    text = ISVC + 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in range(1, levels + 1):
        text += f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]\n"
    return text


def test_aliases_that_would_expand_past_the_limit_are_refused():
    error = load_error(alias_bomb(9))
    assert "YAML aliases would expand this document" in str(error)
    assert str(error).startswith("x.yaml:1:")
    (small,) = load_text(alias_bomb(2))  # 810 laughs: a use of aliases, not an attack
    assert len(small.resource["l2"]) == 9


def test_an_alias_inside_its_own_anchor_is_refused():
    assert "refers to a node that contains it" in str(load_error(ISVC + "loop: &a [x, *a]\n"))


@pytest.mark.parametrize("depth", [250, 5000])
def test_a_document_nested_too_deeply_is_refused(depth):
    assert "nested more than 200 levels deep" in str(load_error(ISVC + "deep: " + "[" * depth + "]" * depth))


# Trimmed from KServe's docs/samples/v1beta1/custom/torchserve/torchserve-custom.yaml (and bentoml/bentoml.yaml):
# a placeholder in braces starts a YAML flow mapping, which the rest of the value cannot follow.
PLACEHOLDER_IMAGE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: torchserve-custom
spec:
  predictor:
    containers:
    - image: {username}/torchserve:latest
      name: torchserve-container
"""


def test_a_value_starting_with_a_brace_is_told_to_be_quoted():
    with pytest.raises(LoadError) as raised:
        load_text(PLACEHOLDER_IMAGE, source="custom.yaml")
    message = str(raised.value)
    assert message.startswith("custom.yaml:8: ")
    assert 'a value that starts with "{" is a YAML mapping: quote it' in message
    assert "'{username}/torchserve:latest'" in message


def test_a_flow_mapping_that_ends_its_value_is_no_such_mistake():
    text = ISVC + "  transformer: {containers: [{name: kserve-container, image: t}]}\n"
    assert load_text(text)[0].resource["spec"]["transformer"]["containers"][0]["image"] == "t"
    with pytest.raises(LoadError) as raised:
        load_text(ISVC + "  transformer: [a, b\n")
    assert "quote it" not in str(raised.value)
