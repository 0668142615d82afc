"""What every remote backend offers: a listing of the model's objects, and byte ranges of each; and, for
the buckets (S3, GCS, Azure Blob), writing an object (payload logs)."""

from __future__ import annotations

import logging
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import tls
from ..checksum import Checksum
from ..config import StorageConfig
from ..errors import NotFoundError, StorageError, TransferError
from ..uri import Location

CHUNK = 1024 * 1024  # how much one read hands over

log = logging.getLogger("modelplane.storage")


@dataclass(frozen=True)
class RemoteObject:
    """One object of a model: a file once fetched."""

    name: str  # path inside the model folder, '/'-separated
    key: str  # how the backend names it
    size: int | None  # None when the storage does not say
    version: str = ""  # an etag, generation or date: changes when the content changes
    checksum: Checksum | None = None
    ranges: bool = True  # whether byte ranges of it can be read
    # Whether the client library itself checks a whole read of it (a full-object checksum in the response).
    checked_by_client: bool = False


class Backend(ABC):
    """A connection to one remote location. Backends are used from many threads at once."""

    def __init__(self, location: Location, config: StorageConfig) -> None:
        self.location = location
        self.config = config

    @abstractmethod
    def list_objects(self) -> list[RemoteObject]:
        """The objects that make up the model; raises `NotFoundError` when there are none."""

    @abstractmethod
    def read(self, obj: RemoteObject, start: int, end: int | None) -> Iterator[bytes]:
        """The bytes of `obj` from `start` up to `end` (exclusive; None is the end of the object)."""

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Writes `data` as the object `key` (in the location's bucket), replacing any there."""
        raise StorageError(f"{self.location.display}: objects cannot be written there")

    def endpoint(self) -> str:
        """The server the requests go to where the URI does not name it (an S3, GCS or Azure endpoint),
        else "": with the URI, what a cached copy is kept for. Never holds a credential."""
        return ""

    def names_one_object(self, objects: list[RemoteObject]) -> bool:
        """Whether the URI named a single object rather than a folder (patterns then do not apply)."""
        return len(objects) == 1 and objects[0].key == self.location.path

    def checksum_applies(self, obj: RemoteObject) -> bool:
        """Whether `obj.checksum` still holds after reading it (it may not, for some encrypted objects)."""
        return True

    # How to make the client trust an endpoint's certificate, for the error of one it does not trust.
    trust_hint = "give the endpoint's CA in SSL_CERT_FILE"

    def is_transient(self, exc: BaseException) -> bool:
        """Whether trying again may succeed: never after a TLS failure that lasts (an untrusted certificate)."""
        return tls.lasting_failure(exc) is None and self.transient(exc)

    def transient(self, exc: BaseException) -> bool:
        """The backend's own judgement of `is_transient`."""
        if isinstance(exc, StorageError):
            return isinstance(exc, TransferError)
        return isinstance(exc, (ConnectionError, TimeoutError, OSError))

    def explain(self, exc: BaseException) -> StorageError:
        """A `StorageError` saying what went wrong, with no credential in it."""
        failure = tls.lasting_failure(exc)
        if failure is not None and not isinstance(exc, StorageError):
            return StorageError(self.redact(tls.describe(failure, self.location.display, self.trust_hint)))
        return self.describe(exc)

    def describe(self, exc: BaseException) -> StorageError:
        """The backend's own `explain`."""
        if isinstance(exc, StorageError):
            return exc
        return StorageError(
            f"fetching {self.location.display} failed: {self.redact(str(exc) or type(exc).__name__)}"
        )

    def redact(self, text: str) -> str:
        """`text` without the credentials of the config or the URI."""
        text = self.config.redact(text)
        if self.location.query:
            text = text.replace(self.location.query, "***")
        return text

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release connections."""


def server_address(url: str) -> str:
    """`url` as the name of a server: without user info, query string (a SAS token) or trailing '/'."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()
    return f"{parts.scheme.lower()}://{host}{parts.path.rstrip('/')}"


def relative_name(key: str, prefix: str) -> str | None:
    """The name of `key` inside the model folder named by `prefix`, or None when it is not inside.

    `models/iris` holds `models/iris/model.joblib` and `models/iris` itself, not `models/iris2/x`;
    a prefix ending in '/' holds everything under it.
    """
    if key.endswith("/"):
        return None  # a folder marker, not a file
    if key == prefix:
        return posixpath.basename(key)
    if not prefix or prefix.endswith("/"):
        rest = key[len(prefix) :] if key.startswith(prefix) else None
    else:
        rest = key[len(prefix) + 1 :] if key.startswith(prefix + "/") else None
    if not rest:
        return None
    parts = [p for p in rest.split("/") if p]
    if any(p in (".", "..") for p in parts):
        # Never leave the model folder (KServe's initializer would write `..` keys outside it).
        log.warning(
            "skipping the object %s: a '.' or '..' in its key would place it outside the model folder", key
        )
        return None
    return "/".join(parts) or None


def no_model(location: Location, outside: str | None) -> NotFoundError:
    """The error for a listing that holds nothing of the model. `outside` is a key it held that is not in
    the model's folder (`models/iris2/x` for `models/iris`), which KServe's plain prefix match fetches."""
    message = f"no model found at {location.display}"
    if outside is not None:
        message += (
            f": no file lies under {location.path.rstrip('/')}/ (the storage holds {outside}, which is "
            "not in that folder: a storageUri names a folder or one object, not the start of names)"
        )
    return NotFoundError(message)


def check_names(objects: list[RemoteObject], where: str) -> None:
    """Raises `StorageError` when two objects would be one file (`m/x` and `m//x`), or when one would be
    a file where another needs a folder (`m/a` and `m/a/b`): no folder can hold both."""
    files: dict[str, RemoteObject] = {}
    for obj in objects:
        other = files.setdefault(obj.name, obj)
        if other is not obj:
            raise StorageError(f"{where}: {other.key} and {obj.key} would both be the file {obj.name}")
    for obj in objects:
        parts = obj.name.split("/")
        for depth in range(1, len(parts)):
            other = files.get("/".join(parts[:depth]))
            if other is not None:
                raise StorageError(
                    f"{where}: {other.key} would be the file {other.name}, "
                    f"and {obj.key} needs a folder of that name"
                )


def only_model(objects: list[RemoteObject], prefix: str) -> list[RemoteObject]:
    """The objects of the model: the one object named exactly by `prefix`, else everything under it."""
    exact = [obj for obj in objects if obj.key == prefix]
    return exact or objects
