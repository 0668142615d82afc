"""Kubernetes' Secret as modelplane admits it: stringData folded into data, values checked without
being echoed, redacted on a read, and the redacted placeholder written back keeping what is stored."""

from __future__ import annotations

import base64
import json
import os

import pytest

from modelplane.api import admit
from modelplane.api.secrets import (
    LAST_APPLIED,
    REDACTED,
    placeholder,
    redacted,
    secret_files,
    secret_values,
    storage_documents,
)

from .helpers import rejection

DOCUMENT = {"type": "s3", "bucket": "models", "secret_access_key": "hush-hush-value"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str = "storage-config", **fields) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        **fields,
    }


def test_string_data_is_folded_into_data_and_the_type_defaulted():
    stored = admit(secret(stringData={"minio": json.dumps(DOCUMENT)}, data={"other": b64("{}")}))
    assert "stringData" not in stored
    assert stored["type"] == "Opaque"
    assert stored["data"] == {"minio": b64(json.dumps(DOCUMENT)), "other": b64("{}")}
    assert storage_documents(stored) == {"minio": DOCUMENT, "other": {}}


def test_a_read_shows_the_keys_and_no_value():
    applied = json.dumps(secret(stringData={"minio": json.dumps(DOCUMENT)}))
    stored = admit(
        secret(
            stringData={"minio": json.dumps(DOCUMENT)},
            metadata={"name": "s", "annotations": {LAST_APPLIED: applied}},
        )
    )
    assert "hush-hush-value" not in stored["metadata"]["annotations"][LAST_APPLIED]  # not even stored
    shown = redacted(stored)
    assert shown["data"] == {"minio": placeholder(len(json.dumps(DOCUMENT)))}
    assert "hush-hush-value" not in json.dumps(shown) and stored["data"]["minio"] not in json.dumps(shown)
    assert json.loads(shown["metadata"]["annotations"][LAST_APPLIED])["stringData"] == {"minio": REDACTED}


def test_the_placeholder_written_back_keeps_the_stored_value():
    old = admit(secret(stringData={"minio": json.dumps(DOCUMENT), "gone": "{}"}))
    edited = redacted(old)
    edited["data"]["added"] = b64(json.dumps({"type": "gs"}))
    del edited["data"]["gone"]
    stored = admit(edited, old=old)
    assert stored["data"] == {"minio": old["data"]["minio"], "added": b64(json.dumps({"type": "gs"}))}


def test_a_placeholder_is_as_long_as_the_value_it_stands_for():
    assert [base64.b64decode(placeholder(size)) for size in (0, 3, 10, 23)] == [
        b"",
        b"<re",
        b"<redacted>",
        b"<redacted><redacted><re",
    ]
    shown = redacted(admit(secret("sizes", stringData={"one": "x", "long": "y" * 300})))
    assert {key: len(base64.b64decode(value)) for key, value in shown["data"].items()} == {
        "one": 1,
        "long": 300,
    }


def test_the_placeholder_for_a_key_not_stored_or_of_another_size_is_refused():
    assert [e.path for e in rejection(secret(data={"new": REDACTED})).errors] == ["data[new]"]
    old = admit(secret("sized", stringData={"k": "four"}))
    assert [e.path for e in rejection(secret("sized", data={"k": placeholder(5)}), old=old).errors] == [
        "data[k]"
    ]


def test_redacted_given_back_keeps_a_value_of_any_size():
    old = admit(secret("sized", stringData={"k": "y" * 300}))
    assert admit(secret("sized", data={"k": REDACTED}), old=old)["data"] == old["data"]


def test_the_answer_to_a_write_marks_the_values_it_changed_at_their_size():
    old = admit(secret("rotated", stringData={"same": "kept", "rotated": "abc", "grown": "ab"}))
    new = admit(
        secret("rotated", stringData={"same": "kept", "rotated": "abd", "grown": "abc", "added": "x"})
    )
    shown = {key: base64.b64decode(value) for key, value in redacted(new, old)["data"].items()}
    # Only a change a size would not show is marked: a new size, or a new key, shows as a placeholder.
    assert shown == {"same": b"<red", "rotated": b"[ch", "grown": b"<re", "added": b"<"}
    assert redacted(new)["data"]["rotated"] == placeholder(3)  # a read marks nothing
    marked = redacted(new, old)["data"]["rotated"]
    assert [e.path for e in rejection(secret("rotated", data={"rotated": marked}), old=new).errors] == [
        "data[rotated]"
    ]  # the mark stands for no value: written back, it is refused


def test_values_are_checked_and_never_echoed():
    errors = rejection(
        secret(
            data={"notbase64": "hush-hush-value!", "bad key": b64("{}")},
            stringData={"notjson": "hush-hush-value", "notastring": {"secret_access_key": "hush-hush-value"}},
        )
    ).errors
    assert sorted(e.path for e in errors) == [
        "data[bad key]",
        "data[notbase64]",
        "data[notjson]",
        "stringData[notastring]",
    ]
    assert all("hush-hush-value" not in e.message for e in errors)
    # Any JSON is fine in a Secret of another name.
    assert admit(secret("other", stringData={"notjson": "plain text"}))["data"] == {
        "notjson": b64("plain text")
    }


def test_an_immutable_secret_keeps_its_data():
    old = admit(secret("fixed", immutable=True, stringData={"k": "v"}))
    assert [
        e.path for e in rejection(secret("fixed", immutable=True, stringData={"k": "w"}), old=old).errors
    ] == ["data"]
    assert admit(secret("fixed", immutable=True, data={"k": REDACTED}), old=old)["data"] == old["data"]


def test_a_value_of_any_bytes_is_stored_and_read_back_as_those_bytes():
    der = b"\x30\x82\x01\xff\xfe\x00binary"
    stored = admit(secret("keystore", data={"key.der": base64.b64encode(der).decode()}))
    assert secret_files(stored) == {"key.der": der}
    assert os.fsencode(secret_values(stored)["key.der"]) == der


def test_a_storage_config_that_is_not_text_is_refused():
    not_text = base64.b64encode(b"\xff\xfe{}").decode()
    assert [e.path for e in rejection(secret(data={"minio": not_text})).errors] == ["data[minio]"]


def refusals(resource: dict, old: dict | None = None) -> list[str]:
    return [str(error) for error in rejection(resource, old=old).errors]


def test_the_type_cannot_change():
    old = admit(secret("typed", type="Opaque", stringData={"a": "b"}))
    assert refusals(secret("typed", type="example.com/custom", stringData={"a": "b"}), old) == [
        'type: Invalid value: "example.com/custom": field is immutable'
    ]
    # Left out, the type is Opaque: a Secret of another type keeps its type only by naming it
    tls = {"tls.crt": "cert", "tls.key": "key"}
    old = admit(secret("cert", type="kubernetes.io/tls", stringData=tls))
    assert refusals(secret("cert", stringData=tls), old) == [
        'type: Invalid value: "Opaque": field is immutable'
    ]


@pytest.mark.parametrize(
    ("secret_type", "data", "annotations", "errors"),
    [
        (
            "kubernetes.io/tls",
            {"a": "b"},
            {},
            ["data[tls.crt]: Required value", "data[tls.key]: Required value"],
        ),
        ("kubernetes.io/tls", {"tls.crt": "c"}, {}, ["data[tls.key]: Required value"]),
        ("kubernetes.io/dockerconfigjson", {"a": "b"}, {}, ["data[.dockerconfigjson]: Required value"]),
        ("kubernetes.io/dockercfg", {"a": "b"}, {}, ["data[.dockercfg]: Required value"]),
        (
            "kubernetes.io/dockerconfigjson",
            {".dockerconfigjson": "[1]"},
            {},
            ['data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": must be a JSON object'],
        ),
        (
            "kubernetes.io/basic-auth",
            {},
            {},
            ["data[username]: Required value", "data[password]: Required value"],
        ),
        ("kubernetes.io/ssh-auth", {"ssh-privatekey": ""}, {}, ["data[ssh-privatekey]: Required value"]),
        (
            "kubernetes.io/service-account-token",
            {},
            {},
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
    ],
)
def test_a_type_s_keys_are_required(secret_type, data, annotations, errors):
    written = secret("typed", type=secret_type, stringData=data)
    written["metadata"]["annotations"] = annotations
    assert refusals(written) == errors


@pytest.mark.parametrize(
    ("secret_type", "data", "annotations"),
    [
        ("kubernetes.io/tls", {"tls.crt": "", "tls.key": ""}, {}),  # present is enough, as in Kubernetes
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"auths": {}}'}, {}),
        ("kubernetes.io/basic-auth", {"password": ""}, {}),
        ("kubernetes.io/ssh-auth", {"ssh-privatekey": "k"}, {}),
        ("kubernetes.io/service-account-token", {}, {"kubernetes.io/service-account.name": "models"}),
        ("example.com/anything", {}, {}),
    ],
)
def test_a_type_s_keys_given_are_taken(secret_type, data, annotations):
    written = secret("typed", type=secret_type, stringData=data)
    written["metadata"]["annotations"] = annotations
    assert admit(written)["type"] == secret_type


def test_keys_and_size_are_checked_as_kubernetes_checks_them():
    long_key = "k" * 254
    assert refusals(secret("keys", stringData={"..": "a", "..x": "b", long_key: "c"})) == [
        "data[..]: Invalid value: \"..\": must not be '..'",
        "data[..x]: Invalid value: \"..x\": must not start with '..'",
        f'data[{long_key}]: Invalid value: "{long_key}": must be no more than 253 characters',
    ]
    half = "x" * (512 * 1024)
    assert admit(secret("big", stringData={"a": half, "b": half}))  # 1 MiB exactly
    assert refusals(secret("big", stringData={"a": half, "b": half + "x"})) == [
        "data: Too long: may not be more than 1048576 bytes"
    ]


def test_an_immutable_secret_or_config_map_names_each_field_changed():
    """As Kubernetes names them: `immutable` turned off, and each of the values changed."""
    old = admit(secret("fixed", immutable=True, stringData={"k": "v"}))
    unfrozen = rejection(secret("fixed", immutable=False, stringData={"k": "w"}), old=old)
    assert [e.path for e in unfrozen.errors] == ["immutable", "data"]
    assert str(unfrozen.errors[0]) == "immutable: Forbidden: field is immutable when `immutable` is set"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
    old = admit({**config_map, "immutable": True, "data": {"a": "1"}})
    assert [e.path for e in rejection({**config_map, "data": {"a": "1"}}, old=old).errors] == ["immutable"]
    changed = {**config_map, "immutable": True, "binaryData": {"b": b64("2")}}
    assert [e.path for e in rejection(changed, old=old).errors] == ["data", "binaryData"]
