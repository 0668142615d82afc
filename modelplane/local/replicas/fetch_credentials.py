"""The credentials a replica's storage initializer fetches a model with, and where it reads them.

`modelplane storage fetch` runs in a child process: it is given the variables of the component's
ServiceAccount credentials in its environment, and the Secret and ConfigMap files they name in a private
folder of its own for as long as it runs (local/api/storage_credentials.py reads them from the store).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from modelplane.storage import CredentialStore


@dataclass
class FetchCredentials:
    """A fetch's variables, with the files they name (by the folder KServe mounts them in)."""

    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def materialized(self) -> Iterator[dict[str, str]]:
        """The variables, with each mounted folder written into a private temporary one (removed on
        leaving) and the paths into it rewritten to point there."""
        if not self.files:
            yield dict(self.env)
            return
        root = Path(tempfile.mkdtemp(prefix="modelplane-credentials-"))  # 0700: this user's alone
        try:
            env = dict(self.env)
            for index, (mount_path, files) in enumerate(self.files.items()):
                folder = root / str(index)
                folder.mkdir()
                for name, content in files.items():
                    descriptor = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(descriptor, "wb") as file:
                        file.write(content)
                env = {name: _moved(value, mount_path, folder) for name, value in env.items()}
            yield env
        finally:
            shutil.rmtree(root, ignore_errors=True)


class CredentialSource(Protocol):
    def for_namespace(self, namespace: str, secret_name: str | None = None) -> CredentialStore:
        """The storage configs a `storage.key` resolves against."""
        ...

    def of_service_account(
        self,
        namespace: str,
        service_account_name: str | None,
        storage_secret_name: str | None = None,
        image_pull_secrets: list[str] | None = None,
    ) -> FetchCredentials:
        """The credentials of a component's ServiceAccount."""
        ...


def _moved(value: str, mount_path: str, folder: Path) -> str:
    """`value` (a path, or paths joined by `:`) with each path into `mount_path` pointing into `folder`."""
    mount_path = mount_path.rstrip("/")
    parts = value.split(":")
    for index, part in enumerate(parts):
        if part == mount_path or part.startswith(mount_path + "/"):
            parts[index] = str(folder) + part[len(mount_path) :]
    return ":".join(parts)
