"""s3://bucket/prefix, through boto3, against AWS or any S3-compatible server.

Settings come from the storage config, else from the environment variables of the same meaning:

    endpoint_url       AWS_ENDPOINT_URL (or S3_ENDPOINT with S3_USE_HTTPS=0|1)
    region             AWS_DEFAULT_REGION
    access_key_id      AWS_ACCESS_KEY_ID       (else boto3's usual credential chain)
    secret_access_key  AWS_SECRET_ACCESS_KEY
    anonymous          awsAnonymousCredential  unsigned requests
    verify_ssl         S3_VERIFY_SSL           "0"/"false" turns TLS verification off
    ca_bundle          AWS_CA_BUNDLE           or CA_BUNDLE_VOLUME_MOUNT_POINT/cabundle.crt
    addressing_style   S3_USER_VIRTUAL_BUCKET  "path", "virtual" or "auto"
    use_accelerate     S3_USE_ACCELERATE
                       S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT, S3_MAX_ATTEMPTS
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from .. import tls
from ..checksum import Checksum
from ..config import StorageConfig
from ..errors import (
    AccessDeniedError,
    ConfigurationError,
    NotFoundError,
    StorageError,
    TransferError,
    import_optional,
)
from ..uri import Location
from .base import CHUNK, Backend, RemoteObject, no_model, only_model, relative_name, server_address

_MD5 = re.compile(r"^[0-9a-f]{32}$")
_NOT_FOUND = {"NoSuchBucket", "NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
_TRANSIENT = {
    "SlowDown",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "InternalError",
    "ServiceUnavailable",
}


class S3Backend(Backend):
    trust_hint = "give its CA with ca_bundle (AWS_CA_BUNDLE), or turn verification off with verify_ssl: 0 (S3_VERIFY_SSL=0)"

    def __init__(self, location: Location, config: StorageConfig) -> None:
        super().__init__(location, config)
        boto3 = import_optional("boto3", "s3")
        self._errors = import_optional("botocore.exceptions", "s3")
        session = boto3.session.Session(
            aws_access_key_id=config.setting("access_key_id"),
            aws_secret_access_key=config.setting("secret_access_key"),
            region_name=config.setting("region", "AWS_DEFAULT_REGION"),
        )
        try:
            self._client = session.client(
                "s3", endpoint_url=self._endpoint(), verify=self._verify(), config=self._client_config()
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"invalid S3 settings for {location.display}: {config.redact(str(exc))}"
            ) from None
        # botocore retries a TLS failure as any connection error; one that lasts fails at once instead.
        self._client.meta.events.register_first("needs-retry.s3", _stop_at_lasting_tls_failure)
        # Keys whose ETag turned out not to be an MD5 (server-side encryption with KMS or customer keys).
        self._opaque_etags: set[str] = set()

    def _endpoint(self) -> str | None:
        endpoint = self.config.setting("endpoint_url", "AWS_ENDPOINT_URL")
        if endpoint:
            return endpoint
        legacy = os.environ.get("S3_ENDPOINT")
        if legacy and "://" not in legacy:
            scheme = "http" if os.environ.get("S3_USE_HTTPS") == "0" else "https"
            return f"{scheme}://{legacy}"
        return legacy or None

    def _verify(self) -> bool | str:
        if not self.config.flag("verify_ssl", "S3_VERIFY_SSL", default=True):
            return False
        bundle = self.config.setting("ca_bundle", "AWS_CA_BUNDLE")
        if not bundle and os.environ.get("CA_BUNDLE_CONFIGMAP_NAME"):
            bundle = str(Path(os.environ.get("CA_BUNDLE_VOLUME_MOUNT_POINT", "")) / "cabundle.crt")
        if bundle:
            if not Path(bundle).is_file():
                raise ConfigurationError(f"the CA bundle {bundle} does not exist")
            return bundle
        return True

    def _client_config(self):
        botocore = import_optional("botocore", "s3")
        from botocore.config import Config

        s3: dict[str, object] = {}
        style = self.config.setting("addressing_style")
        if not style and self.config.flag("virtual_bucket", "S3_USER_VIRTUAL_BUCKET"):
            style = "virtual"
        endpoint, region = self._endpoint(), self.config.setting("region", "AWS_DEFAULT_REGION")
        if not style and endpoint == "https://s3.amazonaws.com" and region not in (None, "us-east-1"):
            style = "virtual"  # the global endpoint redirects other regions' buckets otherwise
        if style:
            s3["addressing_style"] = style
        if self.config.flag("use_accelerate", "S3_USE_ACCELERATE"):
            s3["use_accelerate_endpoint"] = True
        config = Config(
            connect_timeout=int(os.environ.get("S3_CONNECT_TIMEOUT", "15")),
            read_timeout=int(os.environ.get("S3_READ_TIMEOUT", "30")),
            retries={"max_attempts": int(os.environ.get("S3_MAX_ATTEMPTS", "3")), "mode": "standard"},
            max_pool_connections=32,
            s3=s3 or None,
        )
        if self.config.flag("anonymous", "awsAnonymousCredential"):
            config = config.merge(Config(signature_version=botocore.UNSIGNED))
        return config

    def endpoint(self) -> str:
        return server_address(self._client.meta.endpoint_url)  # as boto3 resolved it, AWS's own included

    def list_objects(self) -> list[RemoteObject]:
        bucket, prefix = self.location.bucket, self.location.path
        objects = []
        outside = None  # a key of the listing that is not in the model's folder
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                name = relative_name(item["Key"], prefix)
                if name is None:
                    if not item["Key"].endswith("/"):
                        outside = outside or item["Key"]
                    continue
                etag = item.get("ETag", "").strip('"')
                single_part = bool(_MD5.match(etag))
                # A full-object checksum (always so for a single-part upload) is checked by botocore
                # on a whole GET with ChecksumMode enabled.
                full_object = item.get("ChecksumType", "FULL_OBJECT" if single_part else "") == "FULL_OBJECT"
                objects.append(
                    RemoteObject(
                        name=name,
                        key=item["Key"],
                        size=item["Size"],
                        version=etag,
                        checksum=Checksum.from_hex("md5", etag) if single_part else None,
                        checked_by_client=bool(item.get("ChecksumAlgorithm")) and full_object,
                    )
                )
        if not objects:
            raise no_model(self.location, outside)
        return only_model(objects, prefix)

    def read(self, obj: RemoteObject, start: int, end: int | None) -> Iterator[bytes]:
        request = {"Bucket": self.location.bucket, "Key": obj.key}
        if obj.version:
            request["IfMatch"] = f'"{obj.version}"'
        if start or (end is not None and end != obj.size):
            request["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        elif obj.checked_by_client:
            request["ChecksumMode"] = "ENABLED"
        response = self._client.get_object(**request)
        if response.get("SSECustomerAlgorithm") or str(response.get("ServerSideEncryption", "")).startswith(
            "aws:kms"
        ):
            self._opaque_etags.add(obj.key)
        body = response["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=self.location.bucket, Key=key, Body=data, ContentType=content_type)

    def checksum_applies(self, obj: RemoteObject) -> bool:
        return obj.key not in self._opaque_etags

    def transient(self, exc: BaseException) -> bool:
        errors = self._errors
        if isinstance(exc, errors.ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return code in _TRANSIENT or status >= 500
        transient = (
            errors.EndpointConnectionError,
            errors.ConnectionClosedError,
            errors.ReadTimeoutError,
            errors.ConnectTimeoutError,
            errors.IncompleteReadError,
            errors.ResponseStreamingError,
        )
        return isinstance(exc, transient) or super().transient(exc)

    def describe(self, exc: BaseException) -> StorageError:
        errors, where = self._errors, self.location.display
        if isinstance(exc, errors.ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _NOT_FOUND:
                return NotFoundError(f"{where}: the bucket or object does not exist ({code})")
            if code in _DENIED:
                return AccessDeniedError(f"{where}: access denied ({code}); check the S3 credentials")
            if code in ("PreconditionFailed", "412"):
                return StorageError(f"{where}: the object changed during the download; try again")
        if isinstance(exc, errors.FlexibleChecksumError):
            return TransferError(f"{where}: the object's checksum does not match what arrived")
        if isinstance(exc, errors.NoCredentialsError):
            return ConfigurationError(
                f"{where}: no S3 credentials; set access_key_id/secret_access_key, AWS_ACCESS_KEY_ID, or anonymous"
            )
        return super().describe(exc)


def _stop_at_lasting_tls_failure(caught_exception: BaseException | None = None, **_: object) -> None:
    """botocore's retry hook: raising the failure ends botocore's retries, with that failure."""
    if caught_exception is not None and tls.lasting_failure(caught_exception) is not None:
        raise caught_exception
