"""KServe's credential builder: what a ServiceAccount's Secrets give the storage initializer."""

from __future__ import annotations

import base64

import pytest

from modelplane.api.service_account_credentials import (
    CredentialsError,
    FromSecret,
    Mount,
    service_account_credentials,
)


def secret(name: str, data: dict[str, str], annotations: dict | None = None) -> dict:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "annotations": annotations or {}},
        "data": encoded,
    }


def account(name: str, *secrets: str, annotations: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "annotations": annotations or {}},
        "secrets": [{"name": s} for s in secrets],
    }


def build(accounts: list[dict], secrets: list[dict], name: str | None, storage_secret: str | None = None):
    by_name = {a["metadata"]["name"]: a for a in accounts}
    secrets_by_name = {s["metadata"]["name"]: s for s in secrets}
    return service_account_credentials(
        "team",
        name,
        storage_secret,
        service_account=by_name.get,
        secret=secrets_by_name.get,
    )


S3_KEYS = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key"}


def test_s3_secret_with_kserve_annotations():
    annotations = {
        "serving.kserve.io/s3-endpoint": "minio.example:9000",
        "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-region": "eu-west-1",
        "serving.kserve.io/s3-verifyssl": "0",
        "serving.kserve.io/s3-useanoncredential": "false",
    }
    built = build([account("sa", "s3creds")], [secret("s3creds", S3_KEYS, annotations)], "sa")
    assert built.env == {
        "AWS_ACCESS_KEY_ID": FromSecret("s3creds", "AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": FromSecret("s3creds", "AWS_SECRET_ACCESS_KEY"),
        "S3_USE_HTTPS": "0",
        "S3_ENDPOINT": "minio.example:9000",
        "AWS_ENDPOINT_URL": "http://minio.example:9000",
        "S3_VERIFY_SSL": "0",
        "awsAnonymousCredential": "false",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    assert built.mounts == []


@pytest.mark.parametrize(
    ("endpoint", "use_https", "expected"),
    [
        ("https://s3.example", None, ("1", "s3.example", "https://s3.example")),
        ("HTTP://s3.example:9000", "1", ("0", "s3.example:9000", "HTTP://s3.example:9000")),
        ("s3.example", None, (None, "s3.example", "https://s3.example")),
        ("s3.example", "1", ("1", "s3.example", "https://s3.example")),
    ],
)
def test_the_endpoint_scheme_decides_https(endpoint, use_https, expected):
    annotations = {"serving.kserve.io/s3-endpoint": endpoint}
    if use_https is not None:
        annotations["serving.kserve.io/s3-usehttps"] = use_https
    env = build([account("sa", "s")], [secret("s", S3_KEYS, annotations)], "sa").env
    assert (env.get("S3_USE_HTTPS"), env["S3_ENDPOINT"], env["AWS_ENDPOINT_URL"]) == expected


def test_s3_settings_from_the_secret_keys_when_not_annotated():
    data = {**S3_KEYS, "S3_ENDPOINT": "http://10.0.0.1:9000", "AWS_DEFAULT_REGION": "us-east-2"}
    env = build([account("sa", "s")], [secret("s", data)], "sa").env
    assert env["AWS_ENDPOINT_URL"] == "http://10.0.0.1:9000"
    assert env["AWS_DEFAULT_REGION"] == "us-east-2"


def test_gcs_azure_https_and_hugging_face_secrets():
    secrets = [
        secret("gcs", {"gcloud-application-credentials.json": "{}"}),
        secret("azure", {"AZ_CLIENT_ID": "c", "AZ_CLIENT_SECRET": "s", "AZ_TENANT_ID": "t"}),
        secret("azkey", {"AZURE_STORAGE_ACCESS_KEY": "k"}),
        secret("web", {"https-host": "models.example", "headers": '{"x-token": "t"}'}),
        secret("hf", {"HF_TOKEN": "hf_x"}),
        secret("other", {"unrelated": "x"}),
    ]
    names = [s["metadata"]["name"] for s in secrets]
    built = build([account("sa", *names)], secrets, "sa")
    assert built.env == {
        "GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/gcloud-application-credentials.json",
        "AZURE_TENANT_ID": FromSecret("azure", "AZ_TENANT_ID"),
        "AZURE_CLIENT_ID": FromSecret("azure", "AZ_CLIENT_ID"),
        "AZURE_CLIENT_SECRET": FromSecret("azure", "AZ_CLIENT_SECRET"),
        "AZURE_STORAGE_ACCESS_KEY": FromSecret("azkey", "AZURE_STORAGE_ACCESS_KEY"),
        "models.example-headers": '{"x-token": "t"}',
        "HF_TOKEN": FromSecret("hf", "HF_TOKEN"),
    }
    assert built.mounts == [Mount("/var/secrets/", "Secret", "gcs", "user-gcp-sa")]
    assert any("service principal" in note for note in built.notes)


def test_azure_keys_the_secret_lacks_are_not_set():
    built = build([account("sa", "azure")], [secret("azure", {"AZURE_CLIENT_ID": "c"})], "sa")
    assert built.env == {"AZURE_CLIENT_ID": FromSecret("azure", "AZURE_CLIENT_ID")}


def test_the_storage_secret_annotation_replaces_the_accounts_secrets():
    secrets = [secret("listed", S3_KEYS), secret("chosen", {"HF_TOKEN": "t"})]
    built = build([account("sa", "listed")], secrets, "sa", storage_secret="chosen")
    assert built.env == {"HF_TOKEN": FromSecret("chosen", "HF_TOKEN")}


def test_irsa_account_annotations_give_s3_settings_and_secrets_override_them():
    irsa = {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r",
        "serving.kserve.io/s3-region": "ap-south-1",
        "serving.kserve.io/s3-endpoint": "s3.ap-south-1.amazonaws.com",
    }
    alone = build([account("sa", annotations=irsa)], [], "sa").env
    assert alone == {
        "S3_ENDPOINT": "s3.ap-south-1.amazonaws.com",
        "AWS_ENDPOINT_URL": "https://s3.ap-south-1.amazonaws.com",
        "AWS_DEFAULT_REGION": "ap-south-1",
    }
    annotated = secret("s", S3_KEYS, {"serving.kserve.io/s3-region": "us-west-2"})
    merged = build([account("sa", "s", annotations=irsa)], [annotated], "sa").env
    assert merged["AWS_DEFAULT_REGION"] == "us-west-2"
    # annotations of an account without the IRSA annotation are not read
    plain = {key: value for key, value in irsa.items() if not key.startswith("eks.")}
    assert not build([account("sa", annotations=plain)], [], "sa")


def test_a_ca_bundle_configmap_is_mounted_where_the_bundle_path_points():
    annotations = {
        "serving.kserve.io/s3-cabundle-configmap": "bundle",
        "serving.kserve.io/s3-cabundle": "/etc/ssl/mine/ca.crt",
    }
    built = build([account("sa", "s")], [secret("s", S3_KEYS, annotations)], "sa")
    assert built.mounts == [Mount("/etc/ssl/mine", "ConfigMap", "bundle", "cabundle-cert")]
    assert built.env["CA_BUNDLE_CONFIGMAP_NAME"] == "bundle"
    assert built.env["CA_BUNDLE_VOLUME_MOUNT_POINT"] == "/etc/ssl/mine"
    only_map = {"serving.kserve.io/s3-cabundle-configmap": "bundle"}
    default = build([account("sa", "s")], [secret("s", S3_KEYS, only_map)], "sa")
    assert default.mounts == [Mount("/etc/ssl/custom-certs", "ConfigMap", "bundle", "cabundle-cert")]


def test_missing_account_and_secrets():
    # the namespace's default account may be absent: no credentials, as on a cluster without it
    assert not build([], [], None)
    with pytest.raises(CredentialsError, match='serviceaccount "models" not found in namespace team'):
        build([], [], "models")
    with pytest.raises(CredentialsError, match='secret "gone" .*serviceaccount sa.* not found'):
        build([account("sa", "gone")], [], "sa")
    with pytest.raises(CredentialsError, match='secret "gone" .*storageSecretName.* not found'):
        build([account("sa")], [], "sa", storage_secret="gone")


def test_the_default_account_is_read_when_none_is_named():
    built = build([account("default", "hf")], [secret("hf", {"HF_TOKEN": "t"})], None)
    assert built.env == {"HF_TOKEN": FromSecret("hf", "HF_TOKEN")}
