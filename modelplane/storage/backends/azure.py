"""https://<account>.blob.core.windows.net/<container>/<prefix>, through azure-storage-blob.

Credentials, in order: a SAS token in the URI's query string, or `sas_token`
(`AZURE_STORAGE_SAS_TOKEN`); a connection string, `connection_string`
(`AZURE_STORAGE_CONNECTION_STRING`); the account key, `account_key` (`AZURE_STORAGE_ACCESS_KEY`);
otherwise anonymous access. `endpoint_url` (`AZURE_STORAGE_BLOB_ENDPOINT`) replaces the account's
URL, for Azurite or a private endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from ..checksum import Checksum
from ..config import StorageConfig
from ..errors import AccessDeniedError, NotFoundError, StorageError, import_optional
from ..uri import Location
from .base import Backend, RemoteObject, no_model, only_model, relative_name, server_address


class AzureBackend(Backend):
    trust_hint = "give the endpoint's CA in REQUESTS_CA_BUNDLE"

    def __init__(self, location: Location, config: StorageConfig) -> None:
        super().__init__(location, config)
        blob = import_optional("azure.storage.blob", "azure")
        self._core = import_optional("azure.core", "azure")
        self._exceptions = import_optional("azure.core.exceptions", "azure")
        connection_string = config.setting("connection_string", "AZURE_STORAGE_CONNECTION_STRING")
        if connection_string and not location.query:
            service = blob.BlobServiceClient.from_connection_string(connection_string)
        else:
            service = blob.BlobServiceClient(self._account_url(), credential=self._credential())
        self._container = service.get_container_client(location.bucket)
        self._service_url = service.url  # the account's, endpoint_url's or the connection string's

    def _account_url(self) -> str:
        endpoint = self.config.setting("endpoint_url", "AZURE_STORAGE_BLOB_ENDPOINT")
        return (endpoint or f"https://{urlsplit(self.location.uri).netloc}").rstrip("/")

    def _credential(self) -> Any:
        sas = self.location.query or self.config.setting("sas_token", "AZURE_STORAGE_SAS_TOKEN")
        if sas:
            return sas.lstrip("?")
        key = self.config.setting("account_key", "AZURE_STORAGE_ACCESS_KEY")
        if key:
            return {"account_name": self.location.account, "account_key": key}
        return None

    def endpoint(self) -> str:
        return server_address(self._service_url)

    def list_objects(self) -> list[RemoteObject]:
        prefix = self.location.path
        objects = []
        outside = None  # a key of the listing that is not in the model's folder
        for item in self._container.list_blobs(name_starts_with=prefix or None):
            name = relative_name(item.name, prefix)
            if name is None:
                if not item.name.endswith("/"):
                    outside = outside or item.name
                continue
            md5 = item.content_settings.content_md5 if item.content_settings else None
            checksum = Checksum("md5", bytes(md5)) if md5 else None
            objects.append(
                RemoteObject(
                    name=name, key=item.name, size=item.size, version=item.etag or "", checksum=checksum
                )
            )
        if not objects:
            raise no_model(self.location, outside)
        return only_model(objects, prefix)

    def read(self, obj: RemoteObject, start: int, end: int | None) -> Iterator[bytes]:
        length = None if end is None else end - start
        if length == 0:
            return
        conditions: dict[str, Any] = {}
        if obj.version:
            conditions = {"etag": obj.version, "match_condition": self._core.MatchConditions.IfNotModified}
        blob = self._container.get_blob_client(obj.key)
        yield from blob.download_blob(offset=start, length=length, max_concurrency=1, **conditions).chunks()

    def write(self, key: str, data: bytes, content_type: str) -> None:
        settings = import_optional("azure.storage.blob", "azure").ContentSettings(content_type=content_type)
        self._container.upload_blob(key, data, overwrite=True, content_settings=settings)

    def transient(self, exc: BaseException) -> bool:
        exceptions = self._exceptions
        if isinstance(exc, exceptions.HttpResponseError) and not isinstance(
            exc, exceptions.ResourceModifiedError
        ):
            status = exc.status_code or 0
            return status >= 500 or status in (408, 429)
        transient = (
            exceptions.ServiceRequestError,
            exceptions.ServiceResponseError,
            exceptions.IncompleteReadError,
        )
        return isinstance(exc, transient) or super().transient(exc)

    def describe(self, exc: BaseException) -> StorageError:
        exceptions, where = self._exceptions, self.location.display
        if isinstance(exc, exceptions.ResourceNotFoundError):
            return NotFoundError(f"{where}: the container or blob does not exist")
        if isinstance(exc, exceptions.ClientAuthenticationError) or getattr(exc, "status_code", 0) == 403:
            return AccessDeniedError(f"{where}: access denied; check the Azure credentials")
        if isinstance(exc, exceptions.ResourceModifiedError):
            return StorageError(f"{where}: the blob changed during the download; try again")
        return super().describe(exc)
