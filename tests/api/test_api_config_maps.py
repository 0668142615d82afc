"""Kubernetes' ConfigMap as modelplane admits it: keys and size checked as the API server checks them."""

from __future__ import annotations

import base64

from modelplane.api import admit

from .helpers import rejection


def config_map(**fields) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default"},
        **fields,
    }


def refusals(resource: dict) -> list[str]:
    return [str(error) for error in rejection(resource).errors]


def test_keys_are_checked_as_kubernetes_checks_them():
    assert refusals(config_map(data={".": "a", "bad key": "b"}, binaryData={"..hidden": "AA=="})) == [
        "data[.]: Invalid value: \".\": must not be '.'",
        "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        "binaryData[..hidden]: Invalid value: \"..hidden\": must not start with '..'",
    ]


def test_data_and_binary_data_are_1_mib_in_all():
    half = 512 * 1024
    text = "é" * (half // 2)  # two bytes each: the limit counts bytes
    binary = base64.b64encode(b"\0" * half).decode()
    assert admit(config_map(data={"text": text}, binaryData={"blob": binary}))
    assert refusals(config_map(data={"text": text + "x"}, binaryData={"blob": binary})) == [
        "Too long: may not be more than 1048576 bytes"
    ]
