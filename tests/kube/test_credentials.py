"""A pod's ServiceAccount credentials on the containers that fetch models, as KServe's webhook injects
them: variables as secretKeyRefs, a GCS key and a CA bundle as read-only volumes; what `modelplane render`
cannot see in its input is said."""

from __future__ import annotations

from .helpers import named, render_text
from .test_standard import containers_by_name, env_of

ACCOUNT = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: models, namespace: team}
secrets: [{name: s3creds}, {name: gcs}]
---
apiVersion: v1
kind: Secret
metadata:
  name: s3creds
  namespace: team
  annotations:
    serving.kserve.io/s3-endpoint: minio.team:9000
    serving.kserve.io/s3-usehttps: "0"
    serving.kserve.io/s3-cabundle-configmap: minio-ca
stringData: {AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: key}
---
apiVersion: v1
kind: Secret
metadata: {name: gcs, namespace: team}
stringData: {gcloud-application-credentials.json: "{}"}
"""


def service(name: str, predictor: str) -> str:
    return f"""\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
  namespace: team
  annotations: {{serving.kserve.io/deploymentMode: Standard}}
spec:
  predictor:
{predictor}"""


S3_MODEL = """\
    serviceAccountName: models
    sklearn: {storageUri: "s3://models/iris"}
"""


def pod_of(rendering, name: str) -> dict:
    return named(rendering, "Deployment", f"{name}-predictor")["spec"]["template"]["spec"]


def test_the_storage_initializer_gets_the_accounts_credentials_by_reference():
    rendering = render_text(ACCOUNT + "---\n" + service("iris", S3_MODEL))
    deployment = named(rendering, "Deployment", "iris-predictor")
    initializer = containers_by_name(deployment)["storage-initializer"]
    env = env_of(initializer)
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "s3creds", "key": "AWS_ACCESS_KEY_ID"}}
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "s3creds", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    assert env["AWS_ENDPOINT_URL"] == "http://minio.team:9000"
    assert env["S3_USE_HTTPS"] == "0"
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == "/var/secrets/gcloud-application-credentials.json"
    assert env["CA_BUNDLE_VOLUME_MOUNT_POINT"] == "/etc/ssl/custom-certs"
    volumes = {v["name"]: v for v in pod_of(rendering, "iris")["volumes"]}
    assert volumes["user-gcp-sa"] == {"name": "user-gcp-sa", "secret": {"secretName": "gcs"}}
    assert volumes["cabundle-cert"] == {"name": "cabundle-cert", "configMap": {"name": "minio-ca"}}
    mounts = {m["name"]: m for m in initializer["volumeMounts"]}
    assert mounts["user-gcp-sa"] == {"name": "user-gcp-sa", "mountPath": "/var/secrets/", "readOnly": True}
    # the serving container gets none of it
    assert "AWS_ACCESS_KEY_ID" not in env_of(containers_by_name(deployment)["kserve-container"])
    assert not rendering.notes or all("serviceAccountName" not in n.path for n in rendering.notes)


def test_a_storage_key_names_its_credentials_and_the_account_is_not_read():
    predictor = """\
    serviceAccountName: models
    sklearn:
      storage: {key: minio, path: iris}
"""
    rendering = render_text(ACCOUNT + "---\n" + service("keyed", predictor))
    env = env_of(containers_by_name(named(rendering, "Deployment", "keyed-predictor"))["storage-initializer"])
    assert env == {"STORAGE_CONFIG": {"secretKeyRef": {"name": "storage-config", "key": "minio"}}}


def test_a_storage_spec_without_a_key_reads_kserves_default_entry_and_not_the_account():
    predictor = """\
    serviceAccountName: models
    sklearn:
      storage: {path: iris, parameters: {type: s3, bucket: models}}
"""
    rendering = render_text(ACCOUNT + "---\n" + service("unkeyed", predictor))
    env = env_of(
        containers_by_name(named(rendering, "Deployment", "unkeyed-predictor"))["storage-initializer"]
    )
    reference = {"name": "storage-config", "key": "default_s3", "optional": True}
    assert env == {"STORAGE_CONFIG": {"secretKeyRef": reference}}


def test_a_multi_model_predictors_agent_fetches_with_the_account():
    predictor = """\
    serviceAccountName: models
    sklearn: {}
"""
    rendering = render_text(ACCOUNT + "---\n" + service("mms", predictor))
    by_name = containers_by_name(named(rendering, "Deployment", "mms-predictor"))
    for name in ("agent", "agent-prefetch"):
        assert env_of(by_name[name])["AWS_SECRET_ACCESS_KEY"] == {
            "secretKeyRef": {"name": "s3creds", "key": "AWS_SECRET_ACCESS_KEY"}
        }


def test_the_default_account_and_the_storage_secret_annotation():
    default = """\
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: team}
secrets: [{name: hf}]
---
apiVersion: v1
kind: Secret
metadata: {name: hf, namespace: team}
stringData: {HF_TOKEN: t}
"""
    plain = service("plain", '    sklearn: {storageUri: "s3://models/iris"}\n')
    rendering = render_text(default + "---\n" + ACCOUNT + "---\n" + plain)
    env = env_of(containers_by_name(named(rendering, "Deployment", "plain-predictor"))["storage-initializer"])
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf", "key": "HF_TOKEN"}}
    annotated = plain.replace(
        "{serving.kserve.io/deploymentMode: Standard}",
        "{serving.kserve.io/deploymentMode: Standard, serving.kserve.io/storageSecretName: s3creds}",
    )
    rendering = render_text(default + "---\n" + ACCOUNT + "---\n" + annotated)
    env = env_of(containers_by_name(named(rendering, "Deployment", "plain-predictor"))["storage-initializer"])
    assert "HF_TOKEN" not in env and env["AWS_ACCESS_KEY_ID"]["secretKeyRef"]["name"] == "s3creds"


def test_render_says_what_its_input_lacks_and_renders_without_it():
    rendering = render_text(service("iris", S3_MODEL))
    env = env_of(containers_by_name(named(rendering, "Deployment", "iris-predictor"))["storage-initializer"])
    assert "AWS_ACCESS_KEY_ID" not in env
    notes = [str(n) for n in rendering.notes if n.path == "spec.predictor.serviceAccountName"]
    assert len(notes) == 1 and 'serviceaccount "models" not found' in notes[0], rendering.notes
    assert "not rendered" in notes[0]


def test_a_modelcars_pull_secrets_reach_the_storage_initializer():
    pulls = """\
apiVersion: v1
kind: Secret
metadata: {name: registry, namespace: team}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: '{"auths": {}}'}
"""
    predictor = """\
    imagePullSecrets: [{name: registry}, {name: not-there}]
    sklearn: {storageUri: "oci://registry.example/models/iris:v1"}
"""
    rendering = render_text(pulls + "---\n" + service("car", predictor))
    initializer = containers_by_name(named(rendering, "Deployment", "car-predictor"))["storage-initializer"]
    folder = "/var/run/secrets/modelplane/registry/0"
    assert env_of(initializer)["MODELPLANE_REGISTRY_AUTH_FILES"] == f"{folder}/.dockerconfigjson"
    assert {"name": "registry-auth-0", "mountPath": folder, "readOnly": True} in initializer["volumeMounts"]
    volumes = {v["name"]: v for v in pod_of(rendering, "car")["volumes"]}
    assert volumes["registry-auth-0"] == {"name": "registry-auth-0", "secret": {"secretName": "registry"}}
    # the pod keeps its imagePullSecrets for the kubelet's own pulls
    assert pod_of(rendering, "car")["imagePullSecrets"] == [{"name": "registry"}, {"name": "not-there"}]
    notes = [str(n) for n in rendering.notes]
    assert any("image pull secret not-there not found: images are pulled without it" in n for n in notes)
