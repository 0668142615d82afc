"""Kubernetes' Secret as modelplane admits it: stringData folded into data, values checked without
being echoed, redacted on a read, and the redacted placeholder written back keeping what is stored."""

from __future__ import annotations

import base64
import json

from modelplane.api import admit
from modelplane.api.secrets import LAST_APPLIED, REDACTED, redacted, storage_documents

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
    assert shown["data"] == {"minio": REDACTED}
    assert "hush-hush-value" not in json.dumps(shown) and stored["data"]["minio"] not in json.dumps(shown)
    assert json.loads(shown["metadata"]["annotations"][LAST_APPLIED])["stringData"] == {"minio": REDACTED}


def test_the_placeholder_written_back_keeps_the_stored_value():
    old = admit(secret(stringData={"minio": json.dumps(DOCUMENT), "gone": "{}"}))
    edited = redacted(old)
    edited["data"]["added"] = b64(json.dumps({"type": "gs"}))
    del edited["data"]["gone"]
    stored = admit(edited, old=old)
    assert stored["data"] == {"minio": old["data"]["minio"], "added": b64(json.dumps({"type": "gs"}))}


def test_the_placeholder_for_a_key_not_stored_is_refused():
    assert [e.path for e in rejection(secret(data={"new": REDACTED})).errors] == ["data[new]"]


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
