"""The storage credentials a component's ServiceAccount gives its storage initializer, as KServe's
credential builder makes them.

A KServe user who does not write a `storage: {key: ...}` spec gives a model's credentials in Secrets
that a ServiceAccount lists (`secrets: [{name: ...}]`), and names the ServiceAccount in the component's
`serviceAccountName` (without one, the namespace's `default`). Each listed Secret, or only the one the
InferenceService's `serving.kserve.io/storageSecretName` annotation names, is read by its keys, the
first that matches deciding what it is:

| the Secret holds | the storage initializer gets |
|---|---|
| `AWS_SECRET_ACCESS_KEY` | `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, and the S3 settings below |
| `gcloud-application-credentials.json` | the Secret's files in `/var/secrets/`, `GOOGLE_APPLICATION_CREDENTIALS` naming that one |
| `AZ_CLIENT_ID`, `AZURE_CLIENT_ID` or `AZURE_ACCESS_TOKEN` | Azure's variables the Secret has (`AZ_*` keys given as `AZURE_*`) |
| `AZURE_STORAGE_ACCESS_KEY` | that key |
| `https-host` and `headers` | `<host>-headers`: the JSON headers sent to that host |
| `HF_TOKEN` | that token |

The S3 settings come from the Secret's annotations (`serving.kserve.io/s3-endpoint`, `s3-usehttps`,
`s3-region`, `s3-verifyssl`, `s3-useanoncredential`, `s3-usevirtualbucket`, `s3-useaccelerate`,
`s3-cabundle`, `s3-cabundle-configmap`), else its keys named as the variables are. A ServiceAccount
annotated `eks.amazonaws.com/role-arn` (IRSA) gives the S3 settings of its own annotations too.

The pod's `imagePullSecrets` (else its ServiceAccount's, as Kubernetes gives a pod those of its
account) are the registry credentials an `oci://` model is pulled with: each Secret's Docker config
(`.dockerconfigjson`, or the older `.dockercfg`) is mounted, and `MODELPLANE_REGISTRY_AUTH_FILES` lists
them (modelplane's OCI puller reads them before Docker's own file). A pull Secret that is missing is
passed over, as the kubelet pulls without it.

The result names Secret values (`FromSecret`) and mounts rather than holding values: on Kubernetes they
become `secretKeyRef`s and volumes, on `modelplane up` they are read from the store when a model is
fetched (local/api/storage_credentials.py).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from .secrets import secret_values

STORAGE_SECRET_ANNOTATION = "serving.kserve.io/storageSecretName"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
DEFAULT_SERVICE_ACCOUNT = "default"

# KServe's shipped `inferenceservice-config` names for the keys of an S3 and a GCS Secret.
S3_ACCESS_KEY_ID_KEY = "AWS_ACCESS_KEY_ID"
S3_SECRET_ACCESS_KEY_KEY = "AWS_SECRET_ACCESS_KEY"
GCS_CREDENTIAL_FILE = "gcloud-application-credentials.json"
GCS_MOUNT_PATH = "/var/secrets/"
CA_BUNDLE_MOUNT_PATH = "/etc/ssl/custom-certs"
REGISTRY_MOUNT_PATH = "/var/run/secrets/modelplane/registry"
REGISTRY_AUTH_FILES = "MODELPLANE_REGISTRY_AUTH_FILES"
# A pull Secret's Docker config: `kubernetes.io/dockerconfigjson`'s key, then `kubernetes.io/dockercfg`'s.
DOCKER_CONFIG_KEYS = (".dockerconfigjson", ".dockercfg")

_S3_PREFIX = "serving.kserve.io/"
# (annotation, the variable it sets, which is also the Secret key read when the annotation is absent)
_S3_SETTINGS = (
    ("s3-verifyssl", "S3_VERIFY_SSL"),
    ("s3-useanoncredential", "awsAnonymousCredential"),
    ("s3-region", "AWS_DEFAULT_REGION"),
    ("s3-usevirtualbucket", "S3_USER_VIRTUAL_BUCKET"),
    ("s3-useaccelerate", "S3_USE_ACCELERATE"),
    ("s3-cabundle", "AWS_CA_BUNDLE"),
    ("s3-cabundle-configmap", "AWS_CA_BUNDLE_CONFIGMAP"),
)
_AZURE_VARIABLES = (
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_ACCESS_TOKEN",
    "AZURE_ACCESS_EXPIRES_ON_SECONDS",
    "AZURE_ACCOUNT_NAME",
    "AZURE_SERVICE_URL",
)
_AZURE_LEGACY_KEYS = {
    "AZURE_SUBSCRIPTION_ID": "AZ_SUBSCRIPTION_ID",
    "AZURE_TENANT_ID": "AZ_TENANT_ID",
    "AZURE_CLIENT_ID": "AZ_CLIENT_ID",
    "AZURE_CLIENT_SECRET": "AZ_CLIENT_SECRET",
}


class CredentialsError(Exception):
    """A Secret or ServiceAccount the credentials need is not there."""


@dataclass(frozen=True)
class FromSecret:
    """A variable's value: the key `key` of the Secret `secret`."""

    secret: str
    key: str


@dataclass(frozen=True)
class Mount:
    """The keys of a Secret or a ConfigMap (`kind`) as files in the folder `path`, from the pod's
    volume `volume`."""

    path: str
    kind: str
    name: str
    volume: str


@dataclass
class InitializerCredentials:
    """What the storage initializer gets: variables (a later one of a name replaces an earlier one,
    as in a container's `env`) and the folders of Secret and ConfigMap files they point into."""

    env: dict[str, str | FromSecret] = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.env or self.mounts)


def service_account_credentials(
    namespace: str,
    service_account_name: str | None,
    storage_secret_name: str | None = None,
    *,
    service_account: Callable[[str], dict | None],
    secret: Callable[[str], dict | None],
    image_pull_secrets: list[str] | None = None,
) -> InitializerCredentials:
    """The credentials of the ServiceAccount `service_account_name` (else `default`) of `namespace`,
    or of the one Secret `storage_secret_name` (the annotation's) in place of the ServiceAccount's, and
    the registry credentials of the pod's `image_pull_secrets` (else the ServiceAccount's), reading
    ServiceAccounts and Secrets there with the callables given (None: there is none).

    A Secret the ServiceAccount or the annotation names, or a ServiceAccount named explicitly, that
    does not exist raises CredentialsError: Kubernetes would not start the pod either. A namespace
    without a `default` ServiceAccount gives no credentials but the pull Secrets'."""
    name = service_account_name or DEFAULT_SERVICE_ACCOUNT
    account = service_account(name)
    credentials = InitializerCredentials()
    if account is None and service_account_name not in (None, "", DEFAULT_SERVICE_ACCOUNT):
        raise CredentialsError(f'serviceaccount "{name}" not found in namespace {namespace}')
    account = account or {}
    account_annotations = (account.get("metadata") or {}).get("annotations") or {}
    if IRSA_ANNOTATION in account_annotations:
        credentials.env.update(_s3_settings(account_annotations, {}))
    if storage_secret_name:
        secret_names, named_by = [storage_secret_name], f"the annotation {STORAGE_SECRET_ANNOTATION}"
    else:
        secret_names, named_by = reference_names(account.get("secrets")), f"serviceaccount {name}"
    for secret_name in secret_names:
        resource = secret(secret_name)
        if resource is None:
            raise CredentialsError(f'secret "{secret_name}" ({named_by}) not found in namespace {namespace}')
        _add_secret(credentials, secret_name, resource)
    _add_ca_bundle_mount(credentials)
    _add_registry_auth(
        credentials, image_pull_secrets or reference_names(account.get("imagePullSecrets")), secret
    )
    return credentials


def service_account_name(pod_spec: dict) -> str | None:
    """The ServiceAccount a pod spec (a component's) names; `serviceAccount` is the field's old name."""
    return pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or None


def reference_names(references: object) -> list[str]:
    """The names of a list of references (`[{name: ...}]`)."""
    if not isinstance(references, list):
        return []
    return [ref["name"] for ref in references if isinstance(ref, dict) and ref.get("name")]


def _add_registry_auth(credentials: InitializerCredentials, names: list[str], secret: Callable) -> None:
    """Each pull Secret's Docker config mounted, and listed in `MODELPLANE_REGISTRY_AUTH_FILES`."""
    files = []
    for name in names:
        resource = secret(name)
        key = (
            next((k for k in DOCKER_CONFIG_KEYS if k in secret_values(resource)), None) if resource else None
        )
        if key is None:
            why = "not found" if resource is None else f"holds no {' or '.join(DOCKER_CONFIG_KEYS)}"
            credentials.notes.append(f"image pull secret {name} {why}: images are pulled without it")
            continue
        folder = f"{REGISTRY_MOUNT_PATH}/{len(files)}"
        credentials.mounts.append(Mount(folder, "Secret", name, f"registry-auth-{len(files)}"))
        files.append(f"{folder}/{key}")
    if files:
        credentials.env[REGISTRY_AUTH_FILES] = ":".join(files)


def _add_secret(credentials: InitializerCredentials, name: str, resource: dict) -> None:
    data = secret_values(resource)
    env = credentials.env
    if S3_SECRET_ACCESS_KEY_KEY in data:
        env["AWS_ACCESS_KEY_ID"] = FromSecret(name, S3_ACCESS_KEY_ID_KEY)
        env["AWS_SECRET_ACCESS_KEY"] = FromSecret(name, S3_SECRET_ACCESS_KEY_KEY)
        env.update(_s3_settings((resource.get("metadata") or {}).get("annotations") or {}, data))
    elif GCS_CREDENTIAL_FILE in data:
        credentials.mounts.append(Mount(GCS_MOUNT_PATH, "Secret", name, "user-gcp-sa"))
        env["GOOGLE_APPLICATION_CREDENTIALS"] = GCS_MOUNT_PATH + GCS_CREDENTIAL_FILE
    elif {"AZ_CLIENT_ID", "AZURE_CLIENT_ID", "AZURE_ACCESS_TOKEN"} & data.keys():
        credentials.notes.append(
            f"secret {name} holds an Azure service principal, which modelplane's storage does not sign "
            "in with: give the storage account's key (AZURE_STORAGE_ACCESS_KEY) or a SAS token"
        )
        for variable in _AZURE_VARIABLES:
            key = _AZURE_LEGACY_KEYS.get(variable, variable)
            key = key if key in data else variable
            if key in data:
                env[variable] = FromSecret(name, key)
    elif "AZURE_STORAGE_ACCESS_KEY" in data:
        env["AZURE_STORAGE_ACCESS_KEY"] = FromSecret(name, "AZURE_STORAGE_ACCESS_KEY")
    elif "https-host" in data:
        if "headers" in data:
            env[f"{data['https-host']}-headers"] = data["headers"]
    elif "HF_TOKEN" in data:
        env["HF_TOKEN"] = FromSecret(name, "HF_TOKEN")
    elif "HDFS_NAMENODE" in data:
        credentials.notes.append(f"secret {name} is for HDFS, which modelplane's storage does not fetch from")


def _s3_settings(annotations: dict, data: dict[str, str]) -> dict[str, str]:
    """The S3 variables an annotation (else a key of the Secret of the variable's name) sets."""

    def setting(annotation: str, variable: str) -> str:
        value = annotations.get(_S3_PREFIX + annotation)
        return value if value is not None else data.get(variable, "")

    env: dict[str, str] = {}
    endpoint = setting("s3-endpoint", "S3_ENDPOINT").strip()
    if endpoint:
        lowered = endpoint.lower()
        if lowered.startswith("https://"):
            use_https, host, url = "1", endpoint[8:], endpoint
        elif lowered.startswith("http://"):
            use_https, host, url = "0", endpoint[7:], endpoint
        else:
            use_https, host = setting("s3-usehttps", "S3_USE_HTTPS"), endpoint
            url = ("http://" if use_https == "0" else "https://") + endpoint
        if use_https:
            env["S3_USE_HTTPS"] = use_https
        env["S3_ENDPOINT"] = host
        env["AWS_ENDPOINT_URL"] = url
    for annotation, variable in _S3_SETTINGS:
        value = setting(annotation, variable)
        if value:
            env[variable] = value
    return env


def _add_ca_bundle_mount(credentials: InitializerCredentials) -> None:
    """An S3 CA bundle kept in a ConfigMap: its files mounted where `AWS_CA_BUNDLE` points (else
    KServe's default folder), and the storage initializer told where (`CA_BUNDLE_*`)."""
    config_map = credentials.env.get("AWS_CA_BUNDLE_CONFIGMAP")
    if not isinstance(config_map, str) or not config_map:
        return
    bundle = credentials.env.get("AWS_CA_BUNDLE")
    folder = posixpath.dirname(bundle) if isinstance(bundle, str) and bundle else CA_BUNDLE_MOUNT_PATH
    credentials.mounts.append(Mount(folder, "ConfigMap", config_map, "cabundle-cert"))
    credentials.env["CA_BUNDLE_CONFIGMAP_NAME"] = config_map
    credentials.env["CA_BUNDLE_VOLUME_MOUNT_POINT"] = folder
