"""A container's environment on `modelplane up`: ConfigMaps, Secrets, the downward API, resources and
`$(NAME)` references, as Kubernetes makes a container's, read when each replica starts."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.platform_process import PlatformProcess, running_platform, wait_until

ECHO = Path(__file__).with_name("env_echo.py")

SETTINGS = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "settings"},
    "data": {"LOG_LEVEL": "debug", "MODEL_NAME": "iris"},
}


def secret(name: str, values: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": values}


def echo_service(name: str, env: list[dict], env_from: list[dict] = (), args: list[str] = ()) -> dict:
    container = {
        "name": "kserve-container",
        "image": "env-echo:latest",
        "command": ["python", str(ECHO)],
        "args": list(args),
        "env": env,
        "envFrom": list(env_from),
        "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": {"tier": "gold"}},
        "spec": {"predictor": {"containers": [container]}},
    }


def isvc(platform: PlatformProcess, name: str) -> dict:
    url = f"{platform.api_url}/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices/{name}"
    return httpx.get(url, timeout=30).json()


def condition(resource: dict, kind: str) -> dict:
    conditions = (resource.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def echoed(platform: PlatformProcess, name: str) -> dict:
    def answer() -> dict | None:
        if condition(isvc(platform, name), "Ready").get("status") != "True":
            return None
        response = platform.request("GET", f"{name}.default.localhost", "/")
        return response.json() if response.status_code == 200 else None

    return wait_until(answer, f"{name} to answer", platform)


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[PlatformProcess]:
    home = tmp_path_factory.mktemp("mp-env")
    with running_platform(home) as running:
        yield running


def test_a_replica_s_environment_comes_from_config_maps_secrets_the_pod_and_its_resources(platform):
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-secret", "key": "HF_TOKEN"}}},
        {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LOG_LEVEL"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
        {
            "name": "CPU_MILLIS",
            "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}},
        },
        {"name": "GREETING", "value": "hello at $(LEVEL)"},
    ]
    service = echo_service(
        "env-echo",
        env,
        [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        ["--model=$(CFG_MODEL_NAME)", "--token=$(TOKEN)", "--escaped=$$(LEVEL)", "--unknown=$(NOPE)"],
    )
    platform.apply(SETTINGS, secret("hf-secret", {"HF_TOKEN": "hf_abc"}), service)
    answer = echoed(platform, "env-echo")
    seen = answer["env"]
    assert (seen["TOKEN"], seen["LEVEL"], seen["GREETING"]) == ("hf_abc", "debug", "hello at debug")
    assert (seen["CFG_LOG_LEVEL"], seen["CFG_MODEL_NAME"]) == ("debug", "iris")
    assert seen["POD_NAME"] == "env-echo-predictor-00001-0" and seen["POD_NAMESPACE"] == "default"
    assert (seen["TIER"], seen["CPU_MILLIS"]) == ("gold", "250")
    assert answer["argv"] == ["--model=iris", "--token=hf_abc", "--escaped=$(LEVEL)", "--unknown=$(NOPE)"]
    # What the API answers of the Secret, and the platform's lines in the replica's log (its command
    # line among them), hold no value of it.
    assert "hf_abc" not in platform.cli("get", "secret", "hf-secret", "-o", "yaml").stdout
    log = platform.home / "logs/default/env-echo/predictor/env-echo-predictor-00001-0.log"
    assert "--token=<redacted>" in log.read_text() and "hf_abc" not in log.read_text()
    platform.cli("delete", "isvc", "env-echo")


def test_a_missing_secret_holds_the_replica_until_it_is_applied(platform):
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    platform.apply(echo_service("waits", env))

    def held() -> dict | None:
        found = condition(isvc(platform, "waits"), "PredictorReady")
        return "not found" in found.get("message", "") and found

    predictor = wait_until(held, "the missing Secret in the status", platform)
    assert predictor["status"] == "False"
    assert 'CreateContainerConfigError: secret "later" not found' in predictor["message"]
    platform.apply(secret("later", {"token": "t0k"}))
    assert echoed(platform, "waits")["env"]["TOKEN"] == "t0k"
    platform.cli("delete", "isvc", "waits")


def test_a_secret_value_of_bytes_reaches_the_replica_as_they_are_and_a_nul_byte_holds_it(platform):
    der = b"\x30\x82\x01\xff\xfe DER, not UTF-8"
    values = {"key.der": der, "nul": b"a\x00b"}
    keys = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "keys"},
        "data": {key: base64.b64encode(value).decode() for key, value in values.items()},
    }
    platform.apply(keys, echo_service("bytes", [_from_secret("KEY", "keys", "key.der")]))
    assert os.fsencode(echoed(platform, "bytes")["env"]["KEY"]) == der  # json escapes them as surrogates
    platform.cli("delete", "isvc", "bytes")
    platform.apply(echo_service("nul", [_from_secret("NUL", "keys", "nul")]))

    def held() -> dict | None:
        found = condition(isvc(platform, "nul"), "PredictorReady")
        return "nul byte" in found.get("message", "") and found

    message = wait_until(held, "the NUL byte in the status", platform)["message"]
    assert 'CreateContainerConfigError: invalid environment variable "NUL": contains nul byte' in message
    platform.cli("delete", "isvc", "nul")


def _from_secret(name: str, secret_name: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


def test_what_kubernetes_refuses_is_refused_and_nothing_is_stored(platform):
    env = [{"name": "WHERE", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}}]
    result = platform.apply(echo_service("refused", env), check=False)
    assert result.returncode != 0
    assert (
        'spec.predictor.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.containers"'
        in result.stderr
    )
    assert platform.cli("get", "isvc", "refused", check=False).returncode != 0


def test_volumes_of_config_maps_and_secrets_are_folders_that_stand_for_their_mount_paths(platform):
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-files"},
        "data": {"app.yaml": "level: debug\n"},
    }
    service = echo_service(
        "mounted",
        [{"name": "CERT", "value": "/etc/tls/tls.crt"}],
        # A mount path no machine running the tests has: a path into it that names a file of this
        # machine is left as it is (a program the image would hold).
        args=[
            "--config=/etc/app/app.yaml",
            "--scratch",
            "/emptydir-mount/scratch",
            "--labels=/etc/podinfo/labels",
        ],
    )
    container = service["spec"]["predictor"]["containers"][0]
    container["volumeMounts"] = [
        {"name": "app", "mountPath": "/etc/app", "readOnly": True},
        {"name": "tls", "mountPath": "/etc/tls", "readOnly": True},
        {"name": "scratch", "mountPath": "/emptydir-mount"},
        {"name": "podinfo", "mountPath": "/etc/podinfo"},
    ]
    service["spec"]["predictor"]["volumes"] = [
        {"name": "app", "configMap": {"name": "app-files"}},
        {"name": "tls", "secret": {"secretName": "tls-files", "defaultMode": 0o440}},
        {"name": "scratch", "emptyDir": {}},
        {
            "name": "podinfo",
            "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
        },
    ]
    platform.apply(config, secret("tls-files", {"tls.crt": "-----BEGIN CERTIFICATE-----\n"}), service)
    answer = echoed(platform, "mounted")
    config_path = Path(answer["argv"][0].removeprefix("--config="))
    assert config_path.name == "app.yaml" and config_path.read_text() == "level: debug\n"
    assert Path(answer["env"]["CERT"]).read_text() == "-----BEGIN CERTIFICATE-----\n"
    assert oct(Path(answer["env"]["CERT"]).stat().st_mode & 0o777) == oct(0o440)
    assert oct((platform.home / "volumes").stat().st_mode & 0o777) == oct(0o700)
    scratch = Path(answer["argv"][2])
    assert scratch.name == "scratch" and scratch.parent.is_dir() and str(platform.home) in str(scratch)
    labels = Path(answer["argv"][3].removeprefix("--labels=")).read_text().splitlines()
    assert 'tier="gold"' in labels and 'serving.kserve.io/inferenceservice="mounted"' in labels
