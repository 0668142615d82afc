"""Reading Kubernetes protobuf bodies (what kubectl sends for ConfigMaps, Secrets, ServiceAccounts)."""

from __future__ import annotations

import pytest

from modelplane.local.api.errors import BadRequest, UnsupportedMediaType
from modelplane.local.api.protobuf import read_object


def field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def varint(value: int) -> bytes:
    out = b""
    while value > 0x7F:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def envelope(kind: str, raw: bytes, api_version: str = "v1") -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return b"k8s\x00" + field(1, type_meta) + field(2, raw)


def entry(key: str, value: bytes) -> bytes:
    return field(1, key.encode()) + field(2, value)


def test_a_secret_with_its_metadata_becomes_its_json_form():
    metadata = (
        field(1, b"s")
        + field(3, b"default")
        + field(7, 0)
        + field(8, b"")  # a zero creationTimestamp, as kubectl sends it
        + field(11, entry("app", b"x"))
        + field(14, b"one")
        + field(14, b"two")
    )
    raw = field(1, metadata) + field(2, entry("k", b"\x00\xff")) + field(3, b"Opaque") + field(5, 0)
    assert read_object(envelope("Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "namespace": "default",
            "labels": {"app": "x"},
            "finalizers": ["one", "two"],
        },
        "data": {"k": "AP8="},
        "type": "Opaque",
        "immutable": False,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "ConfigMap"}', "does not start with k8s"),
        (envelope("ConfigMap", field(9, b"x")), "ConfigMap has no field 9"),
        (envelope("ConfigMap", field(1, b"\x0a\x05ab")), "a field runs past the end of the message"),
        (envelope("ConfigMap", field(1, field(1, b"\xff"))), "not valid Kubernetes protobuf"),
        (b"k8s\x00\x0a", "not valid Kubernetes protobuf"),
    ],
)
def test_what_is_not_a_readable_object_is_a_400(body, message):
    with pytest.raises(BadRequest, match=message):
        read_object(body)


def test_other_kinds_are_refused_with_415():
    with pytest.raises(
        UnsupportedMediaType, match="only ConfigMap, Secret, ServiceAccount, SelfSubjectAccessReview"
    ):
        read_object(envelope("Pod", b""))


def test_the_access_review_kubectl_auth_can_i_sends():
    # What kubectl 1.32 sent for `auth can-i create pods.serving.kserve.io -n ns1 --subresource=status`.
    body = (
        b"k8s\x00\n2\n\x17authorization.k8s.io/v1\x12\x17SelfSubjectAccessReview\x12S\n\x10\n\x00\x12\x00"
        b'\x1a\x00"\x00*\x002\x008\x00B\x00\x125\n3\n\x03ns1\x12\x06create\x1a\x00"\x00*\x16pods.serving.kserve.io'
        b'2\x06status:\x00\x1a\x08\x08\x00\x12\x00\x1a\x00 \x00\x1a\x00"\x00'
    )
    review = read_object(body)
    assert review["kind"] == "SelfSubjectAccessReview"
    assert review["spec"] == {
        "resourceAttributes": {
            "namespace": "ns1",
            "verb": "create",
            "resource": "pods.serving.kserve.io",
            "subresource": "status",
        }
    }
    assert "status" not in review  # the server's to fill
