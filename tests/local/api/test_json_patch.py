"""JSON Patch (RFC 6902) on its own: the RFC's list and pointer rules, and what cannot be applied."""

from __future__ import annotations

import pytest

from modelplane.local.api.errors import BadRequest
from modelplane.local.api.json_patch import (
    PatchDoesNotApply,
    apply_json_patch,
    pointer_tokens,
    read_json_patch,
)


def patched(document, *operations):
    return apply_json_patch(document, list(operations))


def test_list_positions():
    document = {"items": ["a", "c"]}
    assert patched(document, {"op": "add", "path": "/items/1", "value": "b"}) == {"items": ["a", "b", "c"]}
    assert patched(document, {"op": "add", "path": "/items/-", "value": "d"}) == {"items": ["a", "c", "d"]}
    assert patched(document, {"op": "add", "path": "/items/2", "value": "d"}) == {"items": ["a", "c", "d"]}
    assert patched(document, {"op": "remove", "path": "/items/0"}) == {"items": ["c"]}
    assert patched(document, {"op": "replace", "path": "/items/1", "value": "z"}) == {"items": ["a", "z"]}
    assert patched(document, {"op": "move", "from": "/items/0", "path": "/items/-"}) == {"items": ["c", "a"]}
    assert document == {"items": ["a", "c"]}  # never modified
    for path in ("/items/3", "/items/01", "/items/-1", "/items/x"):
        with pytest.raises(PatchDoesNotApply):
            patched(document, {"op": "add", "path": path, "value": "d"})
    with pytest.raises(PatchDoesNotApply, match="past the end"):
        patched(document, {"op": "remove", "path": "/items/2"})


def test_pointers_unescape_tilde_and_slash_and_empty_is_the_whole_document():
    assert pointer_tokens("/a~1b/c~0d/~01") == ["a/b", "c~d", "~1"]
    assert pointer_tokens("/") == [""]
    assert pointer_tokens("") == []
    assert patched({"a": 1}, {"op": "replace", "path": "", "value": {"b": 2}}) == {"b": 2}
    with pytest.raises(PatchDoesNotApply, match="whole document"):
        patched({"a": 1}, {"op": "remove", "path": ""})


def test_test_compares_json_values_not_python_ones():
    document = {"flag": True, "number": 1, "object": {"a": [1, 2.0]}}
    patched(document, {"op": "test", "path": "/number", "value": 1.0})
    patched(document, {"op": "test", "path": "/object", "value": {"a": [1.0, 2]}})
    for path, value in (("/flag", 1), ("/number", True), ("/object", {"a": [1]}), ("/number", "1")):
        with pytest.raises(PatchDoesNotApply, match="not the one tested"):
            patched(document, {"op": "test", "path": path, "value": value})


def test_the_document_is_read_before_anything_applies():
    assert read_json_patch(b'[{"op": "remove", "path": "/a"}]') == [{"op": "remove", "path": "/a"}]
    with pytest.raises(BadRequest, match="at most 10000"):
        read_json_patch(b"[" + b",".join([b'{"op": "remove", "path": "/a"}'] * 10_001) + b"]")
    with pytest.raises(BadRequest, match="needs a 'from'"):
        read_json_patch(b'[{"op": "move", "path": "/a"}]')
