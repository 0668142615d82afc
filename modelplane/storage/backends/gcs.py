"""gs://bucket/prefix, through google-cloud-storage.

Credentials, in order: a service-account key in the storage config (`base64_service_account`, the
key file base64-encoded, or `service_account_json`); the application default credentials
(`GOOGLE_APPLICATION_CREDENTIALS`); anonymous access. `endpoint_url` in the storage config, or
`STORAGE_EMULATOR_HOST`, points the client at another server, such as an emulator.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator
from typing import Any

from ..checksum import Checksum
from ..config import StorageConfig
from ..errors import AccessDeniedError, ConfigurationError, NotFoundError, StorageError, import_optional
from ..uri import Location
from .base import Backend, RemoteObject, no_model, only_model, relative_name, server_address

PIECE = 8 * 1024 * 1024  # one request per piece of a range: the client returns whole bodies
# Each request gets a connect and a read timeout, and no retries of the client's own: the fetcher's
# retry policy is the one layer of retries, as for every backend (the client's default would keep
# retrying an unreachable host for two minutes before saying why).
REQUEST = {"retry": None, "timeout": (10, 60)}


class GCSBackend(Backend):
    trust_hint = "give the endpoint's CA in REQUESTS_CA_BUNDLE"

    def __init__(self, location: Location, config: StorageConfig) -> None:
        super().__init__(location, config)
        storage = import_optional("google.cloud.storage", "gcs")
        self._exceptions = import_optional("google.api_core.exceptions", "gcs")
        endpoint = config.setting("endpoint_url")
        options = {"api_endpoint": endpoint} if endpoint else None
        credentials = self._service_account()
        if credentials is not None:
            self._client = storage.Client(
                credentials=credentials, project=credentials.project_id, client_options=options
            )
        elif endpoint or os.environ.get("STORAGE_EMULATOR_HOST"):
            # An emulator or private endpoint: never look for Google credentials.
            anonymous = import_optional("google.auth.credentials", "gcs").AnonymousCredentials()
            self._client = storage.Client(credentials=anonymous, project="<none>", client_options=options)
        else:
            self._client = self._default_client(storage)
        self._bucket = self._client.bucket(location.bucket)

    def _service_account(self) -> Any:
        encoded = self.config.get("base64_service_account")
        text = self.config.get("service_account_json")
        if not encoded and not text:
            return None
        try:
            info = json.loads(base64.b64decode(encoded, validate=True) if encoded else text)
            service_account = import_optional("google.oauth2.service_account", "gcs")
            return service_account.Credentials.from_service_account_info(info)
        except (binascii.Error, ValueError, KeyError):
            raise ConfigurationError(
                "the GCS service-account key in the storage config is not valid"
            ) from None

    def _default_client(self, storage: Any) -> Any:
        auth_exceptions = import_optional("google.auth.exceptions", "gcs")
        try:
            return storage.Client()
        except (auth_exceptions.DefaultCredentialsError, OSError):
            return storage.Client.create_anonymous_client()

    def endpoint(self) -> str:
        # As the client resolved it: the config's, the emulator's (STORAGE_EMULATOR_HOST) or Google's.
        return server_address(self._client._connection.API_BASE_URL)

    def list_objects(self) -> list[RemoteObject]:
        prefix = self.location.path
        objects = []
        outside = None  # a key of the listing that is not in the model's folder
        for blob in self._client.list_blobs(self._bucket, prefix=prefix, **REQUEST):
            name = relative_name(blob.name, prefix)
            if name is None:
                if not blob.name.endswith("/"):
                    outside = outside or blob.name
                continue
            checksum = Checksum.from_base64("md5", blob.md5_hash) or Checksum.from_base64(
                "crc32c", blob.crc32c
            )
            objects.append(
                RemoteObject(
                    name=name, key=blob.name, size=blob.size, version=str(blob.generation), checksum=checksum
                )
            )
        if not objects:
            raise no_model(self.location, outside)
        return only_model(objects, prefix)

    def read(self, obj: RemoteObject, start: int, end: int | None) -> Iterator[bytes]:
        blob = self._bucket.blob(obj.key, generation=int(obj.version) if obj.version else None)
        stop = (obj.size or 0) if end is None else end
        position = start
        while position < stop:
            last = min(position + PIECE, stop)
            data = blob.download_as_bytes(
                start=position, end=last - 1, raw_download=True, checksum=None, **REQUEST
            )
            if not data:
                return
            yield data
            position += len(data)

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self._bucket.blob(key).upload_from_string(data, content_type=content_type, **REQUEST)

    def transient(self, exc: BaseException) -> bool:
        exceptions = self._exceptions
        transient = (
            exceptions.TooManyRequests,
            exceptions.InternalServerError,
            exceptions.BadGateway,
            exceptions.ServiceUnavailable,
            exceptions.GatewayTimeout,
        )
        if isinstance(exc, transient):
            return True
        requests = import_optional("requests", "gcs")
        if isinstance(exc, requests.exceptions.RequestException):
            return True
        return super().transient(exc)

    def describe(self, exc: BaseException) -> StorageError:
        exceptions, where = self._exceptions, self.location.display
        if isinstance(exc, exceptions.NotFound):
            return NotFoundError(f"{where}: the bucket or object does not exist")
        if isinstance(exc, (exceptions.Forbidden, exceptions.Unauthorized)):
            return AccessDeniedError(f"{where}: access denied; check the GCS credentials")
        if isinstance(exc, exceptions.PreconditionFailed):
            return StorageError(f"{where}: the object changed during the download; try again")
        return super().describe(exc)
