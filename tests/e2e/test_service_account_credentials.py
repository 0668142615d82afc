"""End to end: storage credentials from a ServiceAccount's Secrets, as KServe users give them, on
`modelplane up`.

A real S3 server (moto's) checks every request's signature against the IAM user it was given, as AWS
does. `modelplane up` runs with no AWS variables of its own. A Secret with the user's keys and KServe's
`serving.kserve.io/s3-*` annotations (the endpoint, http, the region), listed by a ServiceAccount that
the predictor names, is what the storage initializer fetches the model with; a TrainedModel of a
multi-model service is fetched with its service's account too. A ServiceAccount whose Secret holds keys
S3 does not know fails the fetch with S3's answer; a ServiceAccount named before it exists holds the
service until it is applied. A Secret with KServe's `https-host` and `headers` keys gives an HTTP server
that asks for a bearer token its header.
"""

from __future__ import annotations

import json
import os

import boto3
import pytest

from tests.e2e.platform_process import (
    PlatformProcess,
    kill_leftovers,
    running_platform,
    wait_until,
    write_iris_models,
)
from tests.storage.servers import Server, start_http, start_moto

IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
BUCKET = "sa-models"
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> tuple[Server, dict]:
    """moto with signatures checked; the access key of an IAM user allowed everything."""
    server = start_moto(unauthenticated_requests=4)  # the four calls that make the user and its key
    try:
        iam = boto3.client(
            "iam", endpoint_url=server.url, aws_access_key_id="setup", aws_secret_access_key="setup",
            region_name="us-east-1",
        )  # fmt: skip
        iam.create_user(UserName="models")
        key = iam.create_access_key(UserName="models")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="models", PolicyName="all", PolicyDocument=json.dumps(policy))
        client = boto3.client(
            "s3", endpoint_url=server.url, aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"], region_name="us-east-1",
        )  # fmt: skip
        client.create_bucket(Bucket=BUCKET)
        models = tmp_path_factory.mktemp("sa-models")
        from sklearn.linear_model import LogisticRegression

        write_iris_models({models / "iris": LogisticRegression(max_iter=1000)})
        body = (models / "iris" / "model.joblib").read_bytes()
        # Prefixes of one segment: moto's signature check miscounts a `/` in the listing's query.
        for prefix in ("iris", "trained-iris"):
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/model.joblib", Body=body)
        yield (
            server,
            {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]},
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> Server:
    """An HTTP server whose `/private/` files need `Authorization: Bearer let-me-in`."""
    root = tmp_path_factory.mktemp("web")
    from sklearn.linear_model import LogisticRegression

    write_iris_models({root / "private": LogisticRegression(max_iter=1000)})
    server = start_http(root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory, s3):
    home = tmp_path_factory.mktemp("mp-sa-home")
    saved = {name: os.environ.pop(name) for name in AWS_VARIABLES if name in os.environ}
    try:
        with running_platform(home) as platform:
            yield platform
    finally:
        os.environ.update(saved)
    assert kill_leftovers(home) == [], "replicas outlived modelplane up"


def s3_secret(name: str, endpoint: str, keys: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "annotations": {
                "serving.kserve.io/s3-endpoint": endpoint.removeprefix("http://"),
                "serving.kserve.io/s3-usehttps": "0",
                "serving.kserve.io/s3-region": "us-east-1",
            },
        },
        "type": "Opaque",
        "stringData": keys,
    }


def service_account(name: str, *secrets: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name},
        "secrets": [{"name": secret} for secret in secrets],
    }


def isvc(name: str, account: str, uri: str | None = f"s3://{BUCKET}/iris") -> dict:
    predictor: dict = {"serviceAccountName": account, "sklearn": {"resources": {"limits": {"memory": "1Gi"}}}}
    if uri:
        predictor["sklearn"]["storageUri"] = uri
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": predictor},
    }


def predict(platform: PlatformProcess, service: str, model: str) -> dict | None:
    response = platform.request(
        "POST", f"{service}.default.localhost", f"/v1/models/{model}:predict", json=IRIS
    )
    return response.json() if response.status_code == 200 else None


def model_message(platform: PlatformProcess, name: str) -> str:
    status = json.loads(platform.cli("get", "isvc", name, "-o", "json").stdout).get("status") or {}
    failure = ((status.get("modelStatus") or {}).get("lastFailureInfo")) or {}
    return failure.get("message", "")


def test_the_predictor_fetches_with_its_service_accounts_secret(platform, s3):
    server, keys = s3
    platform.apply(s3_secret("s3creds", server.url, keys), service_account("models", "s3creds"))
    platform.apply(isvc("sa-iris", "models"))
    platform.cli("wait", "--for=condition=Ready", "isvc/sa-iris", "--timeout=300s")
    assert predict(platform, "sa-iris", "sa-iris") == {"predictions": [1, 1]}
    log = "".join(p.read_text(errors="replace") for p in (platform.home / "logs").rglob("*") if p.is_file())
    assert keys["AWS_SECRET_ACCESS_KEY"] not in log + platform.log()


def test_a_trained_model_is_fetched_with_its_services_account(platform, s3):
    platform.apply(isvc("sa-mms", "models", uri=None))
    platform.cli("wait", "--for=condition=Ready", "isvc/sa-mms", "--timeout=300s")
    trained = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "TrainedModel",
        "metadata": {"name": "tm-iris"},
        "spec": {
            "inferenceService": "sa-mms",
            "model": {"storageUri": f"s3://{BUCKET}/trained-iris", "framework": "sklearn", "memory": "128Mi"},
        },
    }
    platform.apply(trained)
    found = wait_until(lambda: predict(platform, "sa-mms", "tm-iris"), "the TrainedModel served", platform)
    assert found == {"predictions": [1, 1]}


def test_keys_s3_does_not_know_fail_the_fetch_with_s3s_answer(platform, s3):
    server, keys = s3
    wrong = {"AWS_ACCESS_KEY_ID": "AKIANOTAKEY000000000", "AWS_SECRET_ACCESS_KEY": "not-the-key"}
    platform.apply(s3_secret("wrongcreds", server.url, wrong), service_account("wrong", "wrongcreds"))
    platform.apply(isvc("sa-denied", "wrong"))
    message = wait_until(lambda: model_message(platform, "sa-denied"), "the fetch's failure", platform)
    assert "access denied" in message.lower() or "InvalidAccessKeyId" in message, message
    assert "not-the-key" not in message


def test_an_account_applied_late_lets_the_service_start(platform, s3):
    server, keys = s3
    platform.apply(isvc("sa-late", "late"))
    message = wait_until(lambda: model_message(platform, "sa-late"), "the missing account reported", platform)
    assert 'serviceaccount "late" not found' in message, message
    platform.apply(service_account("late", "s3creds"))
    platform.cli("wait", "--for=condition=Ready", "isvc/sa-late", "--timeout=300s")
    assert predict(platform, "sa-late", "sa-late") == {"predictions": [1, 1]}


def test_an_https_host_secret_gives_the_http_server_its_headers(platform, web):
    headers = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-token"},
        "stringData": {
            "https-host": "127.0.0.1",
            "headers": json.dumps({"Authorization": "Bearer let-me-in"}),
        },
    }
    platform.apply(headers, service_account("web", "web-token"))
    platform.apply(isvc("sa-web", "web", uri=f"{web.url}/private/model.joblib"))
    platform.cli("wait", "--for=condition=Ready", "isvc/sa-web", "--timeout=300s")
    assert predict(platform, "sa-web", "sa-web") == {"predictions": [1, 1]}
    platform.apply(isvc("no-token", "default", uri=f"{web.url}/private/model.joblib"))
    message = wait_until(lambda: model_message(platform, "no-token"), "the fetch refused", platform)
    assert "403" in message or "denied" in message.lower(), message
