"""Where a model's `storage.key` resolves on `modelplane up`: the `storage-config` Secret of the
model's namespace first, then the folder of per-key files (`modelplane.storage.CredentialStore`).

A model is fetched by `modelplane storage fetch` in a child process, which cannot read the store:
it is given the URI resolved here and, in `STORAGE_CONFIG`, the config resolved with it
(`replicas/command.py`'s `fetch_environment`), so that no credential is ever on a command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelplane.api.kinds import SECRET
from modelplane.api.secrets import STORAGE_CONFIG_SECRET, storage_documents
from modelplane.local.api.errors import NotFound
from modelplane.local.api.store import Ref, Store

if TYPE_CHECKING:
    from modelplane.storage import CredentialStore


class StorageCredentials:
    """The storage configs of each namespace, read from the store when a model is fetched (so a
    Secret changed since is what the next fetch uses)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def for_namespace(self, namespace: str) -> CredentialStore:
        from modelplane.storage import CredentialStore

        ref = Ref(SECRET.kind, namespace, STORAGE_CONFIG_SECRET)
        try:
            documents = storage_documents(self.store.get(ref))
        except NotFound:
            documents = {}
        return CredentialStore(
            documents=documents, documents_from=f"Secret {namespace}/{STORAGE_CONFIG_SECRET}"
        )
