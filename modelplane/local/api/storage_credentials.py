"""Where a model's storage credentials come from on `modelplane up`, read from the store when the model
is fetched (so a Secret changed since is what the next fetch uses):

- a `storage: {key: ...}` spec: the key's document of the namespace's `storage-config` Secret (or of
  the Secret the `serving.kserve.io/storageSecretName` annotation names), then the folder of per-key
  files (`modelplane.storage.CredentialStore`);
- anything else: the Secrets of the component's ServiceAccount, as KServe's credential builder reads
  them (api/service_account_credentials.py), on top of the environment of `modelplane up`.

A model is fetched by `modelplane storage fetch` in a child process, which cannot read the store: it
is given the storage config resolved here in `STORAGE_CONFIG` (`replicas/command.py`'s
`fetch_environment`) and the ServiceAccount's credentials as `replicas/fetch_credentials.py` hands
them over, so that no credential is ever on a command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelplane.api.config_maps import config_map_files
from modelplane.api.kinds import SECRET, SERVICE_ACCOUNT
from modelplane.api.secrets import STORAGE_CONFIG_SECRET, secret_files, secret_values, storage_documents
from modelplane.api.service_account_credentials import (
    CredentialsError,
    FromSecret,
    service_account_credentials,
)
from modelplane.local.api.errors import NotFound
from modelplane.local.api.store import Ref, Store
from modelplane.local.replicas.fetch_credentials import FetchCredentials

if TYPE_CHECKING:
    from modelplane.storage import CredentialStore


class StorageCredentials:
    """What the replicas' storage initializers read their credentials from (replicas/fetch_credentials.py's
    `CredentialSource`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def for_namespace(self, namespace: str, secret_name: str | None = None) -> CredentialStore:
        """The storage configs a `storage.key` resolves against."""
        from modelplane.storage import CredentialStore

        secret_name = secret_name or STORAGE_CONFIG_SECRET
        try:
            documents = storage_documents(self.store.get(Ref(SECRET.kind, namespace, secret_name)))
        except NotFound:
            documents = {}
        return CredentialStore(documents=documents, documents_from=f"Secret {namespace}/{secret_name}")

    def of_service_account(
        self,
        namespace: str,
        service_account_name: str | None,
        storage_secret_name: str | None = None,
        image_pull_secrets: list[str] | None = None,
    ) -> FetchCredentials:
        """The credentials of a component's ServiceAccount (and its image pull Secrets); raises
        CredentialsError when a Secret it needs, or the ServiceAccount it names, is missing."""
        read: dict[tuple[str, str], dict | None] = {}

        def stored(kind: str, name: str) -> dict | None:  # each object read once, for the builder and here
            if (kind, name) not in read:
                read[(kind, name)] = self._get(kind, namespace, name)
            return read[(kind, name)]

        built = service_account_credentials(
            namespace,
            service_account_name,
            storage_secret_name,
            service_account=lambda name: stored(SERVICE_ACCOUNT.kind, name),
            secret=lambda name: stored(SECRET.kind, name),
            image_pull_secrets=image_pull_secrets,
        )

        def stored_or_error(kind: str, name: str) -> dict:
            resource = stored(kind, name)
            if resource is None:
                raise CredentialsError(f'{kind.lower()} "{name}" not found in namespace {namespace}')
            return resource

        env = {}
        for variable, value in built.env.items():
            if isinstance(value, FromSecret):
                value = _secret_value(stored_or_error(SECRET.kind, value.secret), value)
            env[variable] = value
        files = {
            mount.path: (secret_files if mount.kind == SECRET.kind else config_map_files)(
                stored_or_error(mount.kind, mount.name)
            )
            for mount in built.mounts
        }
        return FetchCredentials(env, files, built.notes)

    def _get(self, kind: str, namespace: str, name: str) -> dict | None:
        try:
            return self.store.get(Ref(kind, namespace, name))
        except NotFound:
            return None


def _secret_value(secret: dict, wanted: FromSecret) -> str:
    """The variable a key of a Secret makes; CredentialsError when the key is not there, or holds a NUL
    byte, which no environment can (the container runtime refuses it too)."""
    values = secret_values(secret)
    if wanted.key not in values:
        raise CredentialsError(f'secret "{wanted.secret}" has no key {wanted.key}')
    if "\x00" in values[wanted.key]:
        raise CredentialsError(
            f'secret "{wanted.secret}" key {wanted.key}: a NUL byte cannot be passed in an environment variable'
        )
    return values[wanted.key]
