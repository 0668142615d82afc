"""Parsing and checking storage URIs, before anything is fetched.

A storage URI names where a model lives. `parse_uri` turns it into a `Location` or raises
`InvalidURIError`, so that a typo is reported when a resource is applied, not when a replica starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from .errors import InvalidURIError

SUPPORTED = (
    "a local path, file://, pvc://, http://, https://, s3://, gs://, hf://, oci:// "
    "or https://<account>.blob.core.windows.net/"
)

# Schemes other storage initializers accept that modelplane does not fetch from.
_UNSUPPORTED = {"hdfs", "webhdfs", "oci+native", "oci+fetch", "modelscope", "git"}

_AZURE_HOST = re.compile(
    r"^(?P<account>[a-z0-9]{3,24})\.(?:blob\.core\.windows\.net|z\d+\.blob\.storage\.azure\.net)$"
)
# KServe's Azure File share URIs, which modelplane does not fetch from: refused rather than read as a
# plain https:// download (Azure Files answers that with an error page, not the model).
_AZURE_FILE_HOST = re.compile(
    r"^[a-z0-9]{3,24}\.(?:file\.core\.windows\.net|z\d+\.file\.storage\.azure\.net)$"
)
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,221}[A-Za-z0-9]$")
_CLAIM = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_CONTAINER = re.compile(r"^(\$root|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")
# A Hugging Face Hub owner or repository name, and a revision (a branch, a tag or a commit).
_HUB_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
_HUB_REVISION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
# An OCI image reference's parts, as the distribution spec writes them.
_OCI_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
DOCKER_HUB = "registry-1.docker.io"
_OCI_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_OCI_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_OCI_REGISTRY = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)


@dataclass(frozen=True)
class Location:
    """Where a model lives. Which fields are set depends on `kind`."""

    kind: str  # "local", "pvc", "http", "s3", "gs", "azure", "hf" or "oci"
    uri: str
    path: str = ""  # local path, path inside a claim, object key prefix, Hub or image repository
    bucket: str = ""  # s3 or gs bucket, pvc claim, azure container, image registry (host[:port])
    account: str = ""  # azure storage account
    query: str = ""  # azure SAS token carried in the URI
    revision: str = ""  # hf: the branch, tag or commit after ':'; oci: the tag or the digest

    @property
    def display(self) -> str:
        """The URI as it may be shown in logs and messages: without user info or query string."""
        return display_uri(self.uri)


def display_uri(uri: str) -> str:
    """`uri` with anything that may be a credential (user info, query string) masked."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "?***" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def parse_uri(uri: str) -> Location:
    """Check `uri` and say where it points. Raises `InvalidURIError` with the reason."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidURIError("the storage URI is empty")
    if uri != uri.strip() or any(ch in uri for ch in "\r\n\t\0"):
        raise InvalidURIError(
            f"the storage URI {display_uri(uri)!r} contains whitespace or control characters"
        )
    scheme, sep, _ = uri.partition("://")
    if not sep:
        return Location("local", uri, path=uri)
    scheme = scheme.lower()
    if scheme == "file":
        return _parse_file(uri)
    if scheme in _UNSUPPORTED:
        raise InvalidURIError(f"the {scheme}:// scheme is not supported by modelplane; use {SUPPORTED}")
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        raise InvalidURIError(f"{display_uri(uri)!r} is not a valid URI")
    if scheme == "hf":
        return _parse_hub(uri)
    if scheme == "oci":
        return _parse_oci(uri)
    parts = urlsplit(uri)
    if scheme == "pvc":
        return _parse_pvc(uri, parts)
    if scheme in ("s3", "gs"):
        return _parse_bucket(uri, parts, scheme)
    if scheme in ("http", "https"):
        return _parse_http(uri, parts)
    raise InvalidURIError(f"unknown storage scheme {scheme}:// in {display_uri(uri)!r}; use {SUPPORTED}")


def _parse_file(uri: str) -> Location:
    path = uri[len("file://") :]
    if not path:
        raise InvalidURIError(f"{uri!r} names no path")
    return Location("local", uri, path=path)


def _parse_pvc(uri: str, parts: SplitResult) -> Location:
    claim = parts.netloc
    if not _CLAIM.match(claim):
        raise InvalidURIError(f"{uri!r}: {claim!r} is not a valid claim name (pvc://<claim>/<path>)")
    path = parts.path.strip("/")
    _reject_dot_segments(uri, path)
    return Location("pvc", uri, bucket=claim, path=path)


def _parse_bucket(uri: str, parts: SplitResult, scheme: str) -> Location:
    bucket = parts.netloc
    if not bucket:
        raise InvalidURIError(f"{uri!r} names no bucket ({scheme}://<bucket>/<path>)")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidURIError(f"{uri!r}: {bucket!r} is not a valid bucket name")
    if parts.query or parts.fragment:
        raise InvalidURIError(f"{display_uri(uri)!r}: a {scheme}:// URI takes no query string or fragment")
    path = parts.path.lstrip("/")
    _reject_dot_segments(uri, path)
    return Location(scheme, uri, bucket=bucket, path=path)


def _parse_http(uri: str, parts: SplitResult) -> Location:
    try:
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidURIError(f"{display_uri(uri)!r} is not a valid URL: {exc}") from None
    if not host:
        raise InvalidURIError(f"{display_uri(uri)!r} names no host")
    if _AZURE_FILE_HOST.match(host):
        raise InvalidURIError(
            f"{display_uri(uri)!r}: Azure File shares are not supported by modelplane; "
            "copy the model to Blob storage (https://<account>.blob.core.windows.net/<container>/<path>)"
        )
    azure = _AZURE_HOST.match(host)
    if azure and parts.scheme == "https":
        container, _, path = parts.path.lstrip("/").partition("/")
        if not _CONTAINER.match(container):
            raise InvalidURIError(
                f"{display_uri(uri)!r}: expected https://<account>.blob.core.windows.net/<container>/<path>"
            )
        path = path.strip("/")
        _reject_dot_segments(uri, path)
        return Location(
            "azure", uri, account=azure["account"], bucket=container, path=path, query=parts.query
        )
    if not parts.path.strip("/"):
        raise InvalidURIError(f"{display_uri(uri)!r} names no file (http(s)://<host>/<path>)")
    return Location("http", uri, path=parts.path)


def _parse_hub(uri: str) -> Location:
    """`hf://<owner>/<model>[:<revision>]`, as KServe's storage initializer reads it."""
    repository, colon, revision = uri.split("://", 1)[1].partition(":")
    owner, slash, name = repository.partition("/")
    shape = "expected hf://<owner>/<model>[:<revision>]"
    if not slash or "/" in name or not owner or not name:
        raise InvalidURIError(f"{uri!r}: {shape}")
    for part in (owner, name):
        if not _HUB_NAME.match(part) or "--" in part or ".." in part:
            raise InvalidURIError(f"{uri!r}: {part!r} is not a valid Hugging Face Hub name ({shape})")
    if colon and not _HUB_REVISION.match(revision):
        raise InvalidURIError(f"{uri!r}: {revision!r} is not a valid revision ({shape})")
    return Location("hf", uri, path=repository, revision=revision)


def _parse_oci(uri: str) -> Location:
    """`oci://<registry>/<repository>[:<tag>|@<digest>]`: an image whose /models folder is the model,
    as KServe's modelcars have it. The tag defaults to `latest`."""
    shape = "expected oci://<registry>/<repository>[:<tag>] or oci://<registry>/<repository>@sha256:<digest>"
    reference = uri.split("://", 1)[1]
    registry, slash, name = reference.partition("/")
    if not registry or (slash and not name):
        raise InvalidURIError(f"{uri!r}: {shape}")
    if not slash or ("." not in registry and ":" not in registry and registry != "localhost"):
        # No registry named: Docker Hub, as a container runtime reads the image name.
        registry, name = DOCKER_HUB, reference if slash else f"library/{reference}"
    if not _OCI_REGISTRY.match(registry):
        raise InvalidURIError(f"{uri!r}: {registry!r} is not a registry host ({shape})")
    if "@" in name:
        repository, _, revision = name.partition("@")
        if not _OCI_DIGEST.match(revision):
            raise InvalidURIError(f"{uri!r}: {revision!r} is not a sha256 digest ({shape})")
    else:
        repository, colon, revision = name.rpartition(":") if ":" in name else (name, "", "latest")
        if colon and not _OCI_TAG.match(revision):
            raise InvalidURIError(f"{uri!r}: {revision!r} is not a valid tag ({shape})")
    if not _OCI_REPOSITORY.match(repository):
        raise InvalidURIError(f"{uri!r}: {repository!r} is not a valid repository name ({shape})")
    return Location("oci", uri, bucket=registry, path=repository, revision=revision)


def _reject_dot_segments(uri: str, path: str) -> None:
    if any(segment in (".", "..") for segment in path.split("/")):
        raise InvalidURIError(f"{display_uri(uri)!r}: '.' and '..' are not allowed in the path")
