"""http:// and https:// URLs naming a single file (often an archive), through httpx.

Extra request headers for a host come from the environment variable `<host>-headers`, a JSON object.
A fragment such as `#sha256=<hex>` or `#md5=<hex>` pins the file's checksum. A URL whose path names no
type of file but whose query string ends in an archive's name (`.../download?file=model.tar.gz`) is
that archive, as KServe reads it.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from ..archive import archive_suffix, is_archive
from ..checksum import Checksum
from ..config import StorageConfig, env_document
from ..errors import AccessDeniedError, ConfigurationError, NotFoundError, StorageError, TransferError
from ..uri import Location
from .base import Backend, RemoteObject

_CONTENT_RANGE = re.compile(r"bytes 0-0/(\d+)")
_PINNED = re.compile(r"^(sha256|md5)=([0-9a-fA-F]+)$")


class _StatusError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class HTTPBackend(Backend):
    def __init__(self, location: Location, config: StorageConfig) -> None:
        super().__init__(location, config)
        parts = urlsplit(location.uri)
        self._url = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        self._pinned = _pinned_checksum(parts.fragment)
        headers = {"Accept-Encoding": "identity", **_host_headers(parts.hostname or "")}
        timeout = httpx.Timeout(30.0, connect=15.0)
        self._client = httpx.Client(headers=headers, timeout=timeout, follow_redirects=True)

    def list_objects(self) -> list[RemoteObject]:
        # A one-byte range asks for the size and for range support at once; unlike HEAD, it also
        # works with URLs signed for GET only.
        with self._client.stream("GET", self._url, headers={"Range": "bytes=0-0"}) as response:
            size, ranges = self._size_and_ranges(response)
            if response.headers.get("content-type", "").startswith("text/html"):
                raise StorageError(f"{self.location.display} answered with an HTML page, not a model file")
            version = response.headers.get("etag") or response.headers.get("last-modified") or ""
            checksum = self._pinned or Checksum.from_base64("md5", response.headers.get("content-md5"))
        parts = urlsplit(self._url)
        name = _file_name(posixpath.basename(unquote(parts.path.rstrip("/"))), unquote(parts.query))
        return [
            RemoteObject(
                name=name, key=self._url, size=size, version=version, checksum=checksum, ranges=ranges
            )
        ]

    def _size_and_ranges(self, response: httpx.Response) -> tuple[int | None, bool]:
        content_range = response.headers.get("content-range", "")
        if response.status_code == 416 and content_range == "bytes */0":
            return 0, False  # an empty file has no first byte to ask for
        self._check(response)
        match = _CONTENT_RANGE.fullmatch(content_range)
        if response.status_code == 206 and match:
            return int(match[1]), True
        length = response.headers.get("content-length")
        return (int(length) if length and length.isdigit() else None), False

    def read(self, obj: RemoteObject, start: int, end: int | None) -> Iterator[bytes]:
        headers = {}
        ranged = obj.ranges and (start > 0 or (end is not None and end != obj.size))
        if ranged:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if ranged and obj.version and not obj.version.startswith("W/"):
            headers["If-Range"] = obj.version  # a changed file is sent whole, and rejected below
        with self._client.stream("GET", self._url, headers=headers) as response:
            self._check(response)
            if ranged and response.status_code != 206:
                raise StorageError(
                    f"{self.location.display} changed during the download, or stopped honouring ranges"
                )
            yield from response.iter_raw()

    def _check(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            raise _StatusError(response.status_code)

    def names_one_object(self, objects: list[RemoteObject]) -> bool:
        return True

    def transient(self, exc: BaseException) -> bool:
        if isinstance(exc, _StatusError):
            return exc.status >= 500 or exc.status in (408, 429)
        return isinstance(exc, (httpx.TransportError, TransferError)) or super().transient(exc)

    def describe(self, exc: BaseException) -> StorageError:
        where = self.location.display
        if isinstance(exc, _StatusError):
            if exc.status == 404:
                return NotFoundError(f"{where}: not found (HTTP 404)")
            if exc.status in (401, 403):
                return AccessDeniedError(f"{where}: access denied (HTTP {exc.status})")
            return StorageError(f"{where}: the server answered HTTP {exc.status}")
        if isinstance(exc, httpx.TransportError):
            return TransferError(f"{where}: {type(exc).__name__}: {self.redact(str(exc))}")
        return super().describe(exc)

    def close(self) -> None:
        self._client.close()


def _file_name(name: str, query: str) -> str:
    """The path's file name, with the archive suffix the query string ends in when the name has no
    type of its own: KServe's storage initializer then guesses the type from the query string."""
    if not query or is_archive(name) or mimetypes.guess_type(name)[0]:
        return name
    return name + archive_suffix(query)


def _host_headers(host: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in env_document(f"{host}-headers").items()}


def _pinned_checksum(fragment: str) -> Checksum | None:
    if not fragment:
        return None
    match = _PINNED.match(fragment)
    if not match:
        raise ConfigurationError(f"unknown URL fragment #{fragment}; use #sha256=<hex> or #md5=<hex>")
    return Checksum.from_hex(match[1].lower(), match[2])
