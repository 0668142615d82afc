"""A pod's ServiceAccount credentials on its storage initializer and model agent, as KServe's webhook
injects them: the variables as `secretKeyRef`s (values never copied into the pod), the Secret and
ConfigMap files as read-only volumes.

What the credentials are is KServe's credential builder (api/service_account_credentials.py), read
from the ServiceAccounts and Secrets of the service's namespace (`AccountObjects`): the operator reads
them from the cluster when it renders the service; `modelplane render` takes those in its input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelplane.api.service_account_credentials import (
    STORAGE_SECRET_ANNOTATION,
    CredentialsError,
    FromSecret,
    InitializerCredentials,
    reference_names,
    service_account_credentials,
    service_account_name,
)


@dataclass
class AccountObjects:
    """The ServiceAccounts and Secrets of one namespace, by name. `complete`: these are all there are
    (the operator's, read from the cluster); otherwise (`modelplane render`'s input) one that is not
    here may be on the cluster: the credentials it would give are left out. `unread` says what a render
    left out, and what the credentials' Secrets hold that the storage initializer cannot use."""

    namespace: str
    service_accounts: dict[str, dict] = field(default_factory=dict)
    secrets: dict[str, dict] = field(default_factory=dict)
    complete: bool = True
    unread: list[str] = field(default_factory=list)

    def credentials(self, pod: dict, annotations: dict) -> InitializerCredentials:
        """The credentials of a pod's ServiceAccount (raises CredentialsError for a missing one)."""
        try:
            credentials = service_account_credentials(
                self.namespace,
                service_account_name(pod),
                annotations.get(STORAGE_SECRET_ANNOTATION),
                service_account=self.service_accounts.get,
                secret=self.secrets.get,
                image_pull_secrets=reference_names(pod.get("imagePullSecrets")),
            )
        except CredentialsError as exc:
            if self.complete:
                raise
            self.unread.append(f"{exc}: the storage credentials it would give are not rendered")
            return InitializerCredentials()
        self.unread += credentials.notes
        return credentials


def with_credentials(container: dict, pod: dict, credentials: InitializerCredentials) -> None:
    """Adds the credentials' variables to `container`, and their volumes to it and to `pod`."""
    env = [item for item in container.get("env") or [] if item.get("name") not in credentials.env]
    for name, value in credentials.env.items():
        if isinstance(value, FromSecret):
            env.append(
                {"name": name, "valueFrom": {"secretKeyRef": {"name": value.secret, "key": value.key}}}
            )
        else:
            env.append({"name": name, "value": value})
    if env:
        container["env"] = env
    volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
    for mount in credentials.mounts:
        name = mount.volume
        source = (
            {"secret": {"secretName": mount.name}}
            if mount.kind == "Secret"
            else {"configMap": {"name": mount.name}}
        )
        volumes.setdefault(name, {"name": name, **source})
        container["volumeMounts"] = [
            *(container.get("volumeMounts") or []),
            {"name": name, "mountPath": mount.path, "readOnly": True},
        ]
    if volumes:
        pod["volumes"] = list(volumes.values())
