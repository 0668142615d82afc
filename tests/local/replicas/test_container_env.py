"""A replica's environment from its container's `envFrom` and `env`, as the kubelet makes a container's."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys

import pytest

from modelplane.local.api.admission import default_admission
from modelplane.local.api.env_sources import EnvSources
from modelplane.local.api.store import Store, store_path
from modelplane.local.replicas.container_env import (
    CONFIG_MAP,
    SECRET,
    EnvError,
    Pod,
    container_env,
    env_errors,
    expand,
)

POD = Pod(
    "iris-predictor-00001-0",
    "team",
    labels={"serving.kserve.io/inferenceservice": "iris", "tier": "gold"},
    annotations={"owner": "ml@example.com"},
    service_account="models",
)
OBJECTS = {
    (CONFIG_MAP, "team", "settings"): {"LOG_LEVEL": "debug", "MODEL_NAME": "iris"},
    (SECRET, "team", "hf-secret"): {"HF_TOKEN": "hf_abc"},
}


def lookup(kind, namespace, name):
    return OBJECTS.get((kind, namespace, name))


def made(env=(), env_from=(), resources=None):
    return container_env(list(env_from), list(env), POD, resources or {}, lookup)


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("--model=$(MODEL)", "--model=iris"),
        ("$(MODEL)-$(MODEL)", "iris-iris"),
        ("$(UNDEFINED) stays", "$(UNDEFINED) stays"),
        ("$$(MODEL) is escaped", "$(MODEL) is escaped"),
        ("a $ alone, $x and $(unclosed", "a $ alone, $x and $(unclosed"),
        ("no references", "no references"),
    ],
)
def test_references_expand_as_kubernetes_expands_them(text, expanded):
    assert expand(text, {"MODEL": "iris"}) == expanded


def test_values_reference_the_variables_defined_before_them():
    env = made(
        [
            {"name": "A", "value": "$(B)-first"},
            {"name": "B", "value": "b"},
            {"name": "C", "value": "$(B)-then"},
        ]
    )
    assert env == {"A": "$(B)-first", "B": "b", "C": "b-then"}


def test_keys_of_config_maps_and_secrets():
    env = made(
        [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-secret", "key": "HF_TOKEN"}}},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LOG_LEVEL"}}},
            {"name": "URL", "value": "https://hub/$(TOKEN)"},
        ]
    )
    assert env == {"TOKEN": "hf_abc", "LEVEL": "debug", "URL": "https://hub/hf_abc"}


def test_env_from_takes_every_key_with_its_prefix_and_env_wins():
    env = made(
        [{"name": "LOG_LEVEL", "value": "info"}],
        [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "hf-secret"}, "prefix": "SECRET_"}],
    )
    assert env == {"LOG_LEVEL": "info", "MODEL_NAME": "iris", "SECRET_HF_TOKEN": "hf_abc"}


@pytest.mark.parametrize(
    ("env", "env_from", "message"),
    [
        (
            [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}],
            [],
            'secret "gone" not found',
        ),
        (
            [{"name": "T", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "NOPE"}}}],
            [],
            "couldn't find key NOPE in ConfigMap team/settings",
        ),
        ([], [{"configMapRef": {"name": "gone"}}], 'configmap "gone" not found'),
    ],
)
def test_a_missing_source_keeps_the_replica_from_starting(env, env_from, message):
    with pytest.raises(EnvError, match=message):
        made(env, env_from)


def test_optional_sources_that_are_missing_set_nothing():
    env = made(
        [
            {"name": "T", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}}},
            {
                "name": "U",
                "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "NO", "optional": True}},
            },
        ],
        [{"secretRef": {"name": "gone", "optional": True}}],
    )
    assert env == {}


def test_the_downward_api_tells_the_pod_the_replica_stands_for():
    paths = {
        "NAME": "metadata.name",
        "NAMESPACE": "metadata.namespace",
        "UID": "metadata.uid",
        "TIER": "metadata.labels['tier']",
        "OWNER": "metadata.annotations['owner']",
        "MISSING": "metadata.labels['missing']",
        "NODE": "spec.nodeName",
        "ACCOUNT": "spec.serviceAccountName",
        "POD_IP": "status.podIP",
        "HOST_IPS": "status.hostIPs",
    }
    env = made(
        [{"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}} for name, path in paths.items()]
    )
    assert env["NAME"] == "iris-predictor-00001-0" and env["NAMESPACE"] == "team"
    assert (
        len(env["UID"]) == 36
        and env["UID"]
        == made([{"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}])["UID"]
    )
    assert (env["TIER"], env["OWNER"], env["MISSING"]) == ("gold", "ml@example.com", "")
    assert env["NODE"] == socket.gethostname() and env["ACCOUNT"] == "models"
    assert env["POD_IP"] == env["HOST_IPS"] == "127.0.0.1"


def test_resources_in_the_divisor_s_units_rounded_up():
    resources = {"limits": {"cpu": "1500m", "memory": "1Gi"}, "requests": {"cpu": "250m"}}

    def ref(resource, divisor=None):
        spec = {"resource": resource, **({"divisor": divisor} if divisor else {})}
        return {"name": resource.replace(".", "_"), "valueFrom": {"resourceFieldRef": spec}}

    env = made(
        [ref("limits.cpu"), ref("requests.cpu", "1m"), ref("limits.memory", "1Mi"), ref("requests.memory")],
        resources=resources,
    )
    # requests.memory: no request, so the limit, as Kubernetes defaults a request to its limit
    assert env == {
        "limits_cpu": "2",
        "requests_cpu": "250",
        "limits_memory": "1024",
        "requests_memory": str(2**30),
    }


def test_a_resource_without_a_limit_is_the_machine_s():
    env = made([{"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}])
    assert env == {"CPUS": str(os.cpu_count())}


@pytest.mark.parametrize(
    ("container", "path", "message"),
    [
        (
            {"env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
            "c.env[0].valueFrom",
            "may not be specified when `value` is not empty",
        ),
        (
            {"env": [{"name": "A", "valueFrom": {}}]},
            "c.env[0].valueFrom",
            "must specify one of",
        ),
        (
            {
                "env": [
                    {
                        "name": "A",
                        "valueFrom": {
                            "fieldRef": {"fieldPath": "metadata.name"},
                            "secretKeyRef": {"name": "s", "key": "k"},
                        },
                    }
                ]
            },
            "c.env[0].valueFrom",
            "may not have more than one field specified at a time",
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}}]},
            "c.env[0].valueFrom.fieldRef.fieldPath",
            'Unsupported value: "spec.containers"',
        ),
        (
            {
                "env": [
                    {"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.nvidia.com/gpu"}}}
                ]
            },
            "c.env[0].valueFrom.resourceFieldRef.resource",
            "Unsupported value",
        ),
        (
            {
                "env": [
                    {
                        "name": "A",
                        "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "2"}},
                    }
                ]
            },
            "c.env[0].valueFrom.resourceFieldRef.divisor",
            "only divisor's values 1m, 1 are supported with the cpu resource",
        ),
        ({"envFrom": [{"prefix": "X_"}]}, "c.envFrom[0]", "must specify one of"),
    ],
)
def test_what_the_api_server_refuses(container, path, message):
    errors = list(env_errors(container, "c"))
    assert [error.path for error in errors] == [path]
    assert message in errors[0].message


def test_a_well_formed_environment_has_no_errors():
    container = {
        "env": [
            {"name": "A", "value": "x"},
            {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
            {
                "name": "C",
                "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}},
            },
        ],
        "envFrom": [{"secretRef": {"name": "s"}}],
    }
    assert list(env_errors(container, "c")) == []


DER = b"\x30\x82\x01\xff\xfe binary, not UTF-8"


def test_a_secret_value_that_is_not_text_reaches_the_process_as_its_bytes(tmp_path):
    store = Store(store_path(tmp_path), admit=default_admission())
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "keys", "namespace": "team"},
            "data": {"key.der": base64.b64encode(DER).decode()},
        }
    )
    ref = {"secretKeyRef": {"name": "keys", "key": "key.der"}}
    env = container_env([], [{"name": "KEY", "valueFrom": ref}], POD, {}, EnvSources(store))
    show = "import os, sys; sys.stdout.buffer.write(os.environb[b'KEY'])"
    process = subprocess.run([sys.executable, "-c", show], env={**os.environ, **env}, capture_output=True)
    assert process.stdout == DER


def test_a_value_with_a_nul_byte_keeps_the_replica_from_starting():
    def with_nul(kind, namespace, name):
        return {"K": "a\x00b"}

    with pytest.raises(EnvError, match=r'invalid environment variable "K": contains nul byte'):
        container_env([{"secretRef": {"name": "nul"}}], [], POD, {}, with_nul)
