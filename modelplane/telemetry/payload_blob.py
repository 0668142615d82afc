"""Payload logs written to a bucket, as KServe's agent writes them when a logger's `url` names one:
`s3://bucket/prefix`, `gs://bucket/prefix`, or Azure Blob Storage as
`abfs://container@account.dfs.core.windows.net/prefix`.

Each object holds a batch of records (`batchSize`, 1 by default: an object per request or response;
`batchInterval` sends a batch that has not filled up after that long; without it, a batch waits until
it is full, or until the gateway stops) and is named after its first record:

    <prefix>/<namespace>/<service>/<component>/<storage.path>/<id>-<request|response>.<json|csv|parquet>

`storage.parameters.format` chooses the content: `json` (one record an object, a batch a list of them),
`csv` (a header row, then a row a record) or `parquet` (a row a record; it needs pyarrow); a
`marshallerUrl` is sent the batch as a JSON list and its answer is the object, with the extension its `X-Log-Marshal-Extension` header gives (KServe's marshaller
protocol). A record has KServe's fields (`url`, `bytes`: the body in base64, `contentType`, `reqType`,
`id`, `sourceUri`, `inferenceService`, `namespace`, `component`, `endpoint`, `metadata`,
`annotations`, `occurrenceTime`) and, for an answer, `statusCode` and `revision`. The credentials are
the storage config `storage.key` names (the namespace's `storage-config` Secret), with
`storage.parameters` over it.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from modelplane.protocol.http_client import HttpClient, TransportError, parse_target
from modelplane.telemetry.payload_events import PayloadRecord, rfc3339
from modelplane.telemetry.payload_sinks import Outcome, Refused, RetryLater

if TYPE_CHECKING:
    from modelplane.storage.backends import Backend
    from modelplane.storage.uri import Location

BLOB_SCHEMES = ("s3", "gs", "abfs")
FORMATS = ("json", "csv", "parquet")
MARSHAL_EXTENSION_HEADER = b"x-log-marshal-extension"
# The columns of a csv or parquet object: KServe's, then the answer's status and revision.
_COLUMNS = (
    "url",
    "bytes",
    "contentType",
    "reqType",
    "id",
    "sourceUri",
    "inferenceService",
    "namespace",
    "component",
    "endpoint",
    "metadata",
    "annotations",
    "certName",
    "tlsSkipVerify",
    "occurrenceTime",
    "statusCode",
    "revision",
)
_ABFS_HOST = re.compile(
    r"^(?P<container>[a-z0-9-]{3,63})@(?P<account>[a-z0-9]{3,24})\.dfs\.core\.windows\.net$"
)
_EXTENSION = re.compile(r"^[A-Za-z0-9]{1,16}$")
# A request id is the client's to choose: in an object's name, what could make a folder of it (a `/`)
# or trouble a tool (controls, spaces, `%`) is replaced. The record keeps the id as it was.
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._:@+=-]")


@dataclass(frozen=True)
class BlobLogTarget:
    """What a logger whose `url` is a bucket asks for besides the URL."""

    path: str = ""  # storage.path: a folder under <prefix>/<namespace>/<service>/<component>
    format: str = "json"
    batch_size: int = 1
    batch_interval: float = 0.0  # seconds; 0: a batch waits until it is full
    marshaller_url: str | None = None
    # The storage config: endpoint and credentials (kept out of repr, which logs may show).
    config: tuple[tuple[str, str], ...] = field(default=(), repr=False)


def is_blob_url(url: str) -> bool:
    return url.partition("://")[0].lower() in BLOB_SCHEMES and "://" in url


def blob_location(url: str) -> Location:
    """Where a logger's bucket URL points; raises ValueError saying why it cannot be written to."""
    from modelplane.storage.errors import InvalidURIError
    from modelplane.storage.uri import Location, parse_uri

    scheme = url.partition("://")[0].lower()
    if scheme == "abfs":
        parts = urlsplit(url)
        found = _ABFS_HOST.match(parts.netloc)
        if not found:
            raise ValueError(
                f"{url!r}: an abfs:// URL is abfs://<container>@<account>.dfs.core.windows.net/<prefix>"
            )
        path = parts.path.strip("/")
        account, container = found["account"], found["container"]
        uri = f"https://{account}.blob.core.windows.net/{container}/{path}"
        return Location("azure", uri, path=path, bucket=container, account=account)
    try:
        location = parse_uri(url)
    except InvalidURIError as exc:
        raise ValueError(str(exc)) from None
    if not location.bucket:
        raise ValueError(f"{url!r} names no bucket")
    return location


def object_key(prefix: str, record: PayloadRecord, path: str, extension: str) -> str:
    """`<prefix>/<namespace>/<service>/<component>/<path>/<id>-<request|response>.<extension>`."""
    spec = record.spec
    parts = (prefix, spec.namespace, spec.inference_service, spec.component, path)
    folder = "/".join(part.strip("/") for part in parts if part.strip("/"))
    kind = "request" if record.is_request else "response"
    return f"{folder}/{_UNSAFE_IN_NAME.sub('_', record.id)}-{kind}.{extension}"


def log_request(record: PayloadRecord) -> dict:
    """A record as KServe's agent stores it (its LogRequest), with the answer's status and revision."""
    spec = record.spec
    document = {
        "url": spec.url,
        "contentType": record.content_type or None,
        "reqType": record.type,
        "id": record.id,
        "sourceUri": spec.source,
        "inferenceService": spec.inference_service,
        "namespace": spec.namespace,
        "component": spec.component,
        "endpoint": spec.endpoint or None,
        "metadata": record.metadata or None,
        "annotations": dict(spec.annotations) or None,
        "occurrenceTime": rfc3339(record.time_ns).decode(),
    }
    if record.data:
        document["bytes"] = base64.b64encode(record.data).decode()
    if record.status is not None:
        document["statusCode"] = record.status
    if record.revision:
        document["revision"] = record.revision
    if record.omitted is not None:
        document["dataOmitted"] = record.omitted
    return {name: value for name, value in document.items() if value is not None}


def marshal(records: list[PayloadRecord], format: str) -> tuple[bytes, str, str]:
    """The object of a batch: its bytes, its extension and its content type."""
    documents = [log_request(record) for record in records]
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_COLUMNS)
        for document in documents:
            writer.writerow([_csv_cell(document.get(column)) for column in _COLUMNS])
        return out.getvalue().encode(), "csv", "text/csv"
    if format == "parquet":
        return _parquet(documents), "parquet", "application/vnd.apache.parquet"
    body = orjson.dumps(documents[0] if len(documents) == 1 else documents)
    return body, "json", "application/json"


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def format_unavailable(format: str, marshaller_url: str | None) -> str | None:
    """Why objects in `format` cannot be written here; None when they can, or a marshaller writes them."""
    if format != "parquet" or marshaller_url:
        return None
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return "payload logs in parquet need pyarrow: pip install 'modelplane[parquet]'"
    return None


def _parquet(documents: list[dict]) -> bytes:
    """KServe's parquet schema: a string column a field (maps as JSON, absent ones empty), except
    `tlsSkipVerify`, a boolean, and `statusCode`, a number (null for a request)."""
    import pyarrow
    import pyarrow.parquet

    columns = {}
    for column in _COLUMNS:
        values = [document.get(column) for document in documents]
        if column == "tlsSkipVerify":
            columns[column] = pyarrow.array([bool(value) for value in values], pyarrow.bool_())
        elif column == "statusCode":
            columns[column] = pyarrow.array(values, pyarrow.int32())
        else:
            columns[column] = pyarrow.array([_csv_cell(value) for value in values], pyarrow.string())
    out = io.BytesIO()
    pyarrow.parquet.write_table(pyarrow.table(columns), out)
    return out.getvalue()


class BlobSink:
    """Writes each batch it is sent as one object (payload_sinks.Sink). `batch_records` and `linger`
    tell the delivery how to batch: the logger's batchSize and batchInterval."""

    def __init__(self, url: str, target: BlobLogTarget, timeout: float) -> None:
        self.location = blob_location(url)
        self.target = target
        self.batch_records = target.batch_size
        self.linger = target.batch_interval
        self._timeout = timeout
        self._backend: Backend | None = None
        self._marshaller = parse_target(target.marshaller_url) if target.marshaller_url else None
        self._client = HttpClient() if self._marshaller else None

    async def send(self, records: list[PayloadRecord], recorded_ns: int) -> list[Outcome]:
        try:
            data, extension, content_type = await self._marshal(records)
        except (Refused, RetryLater) as outcome:
            return [outcome] * len(records)
        key = object_key(self.location.path, records[0], self.target.path, extension)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._write, key, data, content_type), self._timeout)
        except TimeoutError:
            return [RetryLater(f"writing {key} took more than {self._timeout:g}s")] * len(records)
        except Exception as exc:  # noqa: BLE001 - the storage library's, said without credentials
            return [self._outcome(exc)] * len(records)
        return [None] * len(records)

    async def _marshal(self, records: list[PayloadRecord]) -> tuple[bytes, str, str]:
        if self._marshaller is None:
            return marshal(records, self.target.format)
        batch = orjson.dumps([log_request(record) for record in records])
        headers = b"Content-Type: application/json\r\n"
        try:
            answer = await asyncio.wait_for(
                self._client.post(self._marshaller, batch, headers), self._timeout
            )
        except (TransportError, TimeoutError) as exc:
            raise RetryLater(
                f"the marshaller {self.target.marshaller_url}: {exc or 'no answer in time'}"
            ) from None
        if answer.status >= 500 or answer.status in (408, 429):
            raise RetryLater(f"the marshaller answered {answer.status}")
        if answer.status >= 300:
            raise Refused(f"the marshaller answered {answer.status}: {answer.body[:200]!r}")
        extension = (answer.header(MARSHAL_EXTENSION_HEADER) or b"json").decode("latin-1")
        if not _EXTENSION.match(extension):
            raise Refused(
                f"the marshaller's {MARSHAL_EXTENSION_HEADER.decode()} {extension!r} is not an extension"
            )
        content_type = (answer.header(b"content-type") or b"application/octet-stream").decode("latin-1")
        return answer.body, extension, content_type

    def _write(self, key: str, data: bytes, content_type: str) -> None:
        if self._backend is None:
            from modelplane.storage.backends import open_backend
            from modelplane.storage.config import StorageConfig

            self._backend = open_backend(self.location, StorageConfig(dict(self.target.config)))
        self._backend.write(key, data, content_type)

    def _outcome(self, exc: Exception) -> Outcome:
        """Refused where the credentials or settings are wrong; else worth trying again (a bucket
        that does not exist yet included)."""
        from modelplane.storage.errors import AccessDeniedError, ConfigurationError, StorageError

        backend = self._backend
        if backend is None:  # the client could not be made: its settings are wrong
            return Refused(str(exc) if isinstance(exc, StorageError) else f"{type(exc).__name__}: {exc}")
        explained = backend.explain(exc)
        if isinstance(explained, (AccessDeniedError, ConfigurationError)):
            return Refused(str(explained))
        return RetryLater(str(explained))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._backend is not None:
            self._backend.close()
