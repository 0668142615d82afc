"""Reading an image from an OCI registry (the distribution API: Docker Hub, quay.io, GHCR, ECR, a
registry of your own): its manifest, and its layers checked against their digests.

    registry = Registry(location)              # a Location of kind "oci"
    image = registry.image()                   # Image(digest="sha256:...", layers=(...))
    registry.download(image.layers[0], path)

A registry on a loopback address is spoken to over plain HTTP, as Docker does; any other over HTTPS.
Credentials come from Docker's own file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`,
its `auths` entries): sent as Basic to a registry that asks for them, or to the token service a
registry names (`WWW-Authenticate: Bearer`), which anonymous pulls go through too. An image index
(several platforms) gives the manifest of this machine's platform.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from modelplane.protocol.loopback import is_loopback

from .errors import AccessDeniedError, NotFoundError, StorageError, TransferError
from .uri import DOCKER_HUB, Location

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Image:
    digest: str  # of its manifest: what changes when the image does
    layers: tuple[Layer, ...]


class Registry:
    """One image repository of one registry."""

    def __init__(self, location: Location, timeout: float = 60.0) -> None:
        self.location = location
        host = location.bucket
        self._base = f"{'http' if is_loopback(host) else 'https'}://{host}"
        self._client = httpx.Client(timeout=timeout, follow_redirects=True)
        self._basic = docker_credentials(host)
        self._authorization: str | None = None

    def close(self) -> None:
        self._client.close()

    def image(self) -> Image:
        """The image the location names: its manifest for this machine's platform."""
        manifest, digest = self._manifest(self.location.revision)
        if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
            chosen = _for_this_platform(manifest.get("manifests") or [])
            if chosen is None:
                raise NotFoundError(f"{self.location.display} has no image for {_this_platform()}")
            manifest, digest = self._manifest(chosen)
        layers = tuple(
            Layer(str(layer["digest"]), int(layer.get("size") or 0), str(layer.get("mediaType") or ""))
            for layer in manifest.get("layers") or []
        )
        return Image(digest, layers)

    def download(self, layer: Layer, path: Path) -> None:
        """The layer's blob into `path`, checked against its digest."""
        algorithm, _, expected = layer.digest.partition(":")
        if algorithm != "sha256":
            raise StorageError(f"{self.location.display}: layer digest {layer.digest} is not sha256")
        hashed = hashlib.sha256()
        with self._send("GET", f"blobs/{layer.digest}") as response, path.open("wb") as out:
            for chunk in response.iter_bytes(1024 * 1024):
                hashed.update(chunk)
                out.write(chunk)
        if hashed.hexdigest() != expected:
            raise TransferError(f"{self.location.display}: layer {layer.digest} arrived with another digest")

    def _manifest(self, reference: str) -> tuple[dict, str]:
        accept = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
        with self._send("GET", f"manifests/{reference}", accept=accept) as response:
            body = response.read()
        digest = response.headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        try:
            manifest = json.loads(body)
        except ValueError:
            raise StorageError(f"{self.location.display}: the registry's manifest is not JSON") from None
        if not isinstance(manifest, dict):
            raise StorageError(f"{self.location.display}: the registry's manifest is not an object")
        return manifest, digest

    def _send(self, method: str, path: str, *, accept: str | None = None) -> _Closing:
        """A request to `/v2/<repository>/<path>` (its body not read yet), authorized as the registry
        asks (once)."""
        url = f"{self._base}/v2/{self.location.path}/{path}"
        headers = {"accept": accept} if accept else {}
        try:
            response = self._open(method, url, headers)
            if response.status_code == 401:
                challenge = response.headers.get("www-authenticate", "")
                response.close()
                self._authorize(challenge)
                response = self._open(method, url, headers)
        except httpx.TransportError as exc:
            raise TransferError(f"{self.location.display}: the registry is unreachable: {exc}") from None
        if response.status_code == 200:
            return _Closing(response)
        response.read()
        response.close()
        raise self._refusal(response.status_code, path)

    def _open(self, method: str, url: str, headers: dict) -> httpx.Response:
        if self._authorization:
            headers = {**headers, "authorization": self._authorization}
        return self._client.send(self._client.build_request(method, url, headers=headers), stream=True)

    def _authorize(self, challenge: str) -> None:
        scheme, _, rest = challenge.partition(" ")
        if scheme.lower() == "basic":
            if self._basic is None:
                raise AccessDeniedError(f"{self.location.display}: the registry needs credentials ({_WHERE})")
            self._authorization = "Basic " + base64.b64encode(":".join(self._basic).encode()).decode()
            return
        if scheme.lower() != "bearer":
            raise AccessDeniedError(f"{self.location.display}: the registry asks for {scheme or 'nothing'}")
        fields = dict(_CHALLENGE.findall(rest))
        if "realm" not in fields:
            raise AccessDeniedError(f"{self.location.display}: the registry names no token service")
        params = {k: v for k, v in fields.items() if k in ("service", "scope")}
        params.setdefault("scope", f"repository:{self.location.path}:pull")
        auth = httpx.BasicAuth(*self._basic) if self._basic else None
        try:
            response = self._client.get(fields["realm"], params=params, auth=auth)
        except httpx.TransportError as exc:
            raise TransferError(f"{self.location.display}: the token service is unreachable: {exc}") from None
        if response.status_code != 200:
            raise AccessDeniedError(
                f"{self.location.display}: the registry's token service refused (HTTP {response.status_code})"
            )
        try:
            granted = response.json()
            token = granted.get("token") or granted.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise AccessDeniedError(f"{self.location.display}: the registry's token service gave no token")
        self._authorization = f"Bearer {token}"

    def _refusal(self, status: int, path: str) -> StorageError:
        what = "the image" if path.startswith("manifests/") else f"a layer ({path.removeprefix('blobs/')})"
        if status == 404:
            return NotFoundError(f"{self.location.display}: no such image ({what} is not in the registry)")
        if status in (401, 403):
            return AccessDeniedError(f"{self.location.display}: access to {what} denied ({_WHERE})")
        if status in (429,) or status >= 500:
            return TransferError(f"{self.location.display}: the registry answered HTTP {status}")
        return StorageError(f"{self.location.display}: the registry answered HTTP {status} for {what}")


_WHERE = "credentials are read from Docker's config.json: docker login <registry>"


class _Closing:
    """A streamed response that closes when its `with` ends."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    def __enter__(self) -> httpx.Response:
        return self.response

    def __exit__(self, *_exc) -> None:
        self.response.close()


def docker_credentials(host: str) -> tuple[str, str] | None:
    """(user, password) for `host`: from the image pull Secrets' Docker configs a platform lists in
    `MODELPLANE_REGISTRY_AUTH_FILES` (`:`-separated), else from Docker's own config.json."""
    listed = [Path(path) for path in os.environ.get("MODELPLANE_REGISTRY_AUTH_FILES", "").split(":") if path]
    folder = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    for path in [*listed, Path(folder, "config.json")]:
        found = _config_credentials(path, host)
        if found is not None:
            return found
    return None


def _config_credentials(path: Path, host: str) -> tuple[str, str] | None:
    """(user, password) for `host` in a Docker config: its `auths`, or the whole of an older
    `.dockercfg`, which is that map alone."""
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    auths = config.get("auths", config) if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    names = {host, f"https://{host}", f"http://{host}"}
    if host == DOCKER_HUB:
        names |= {"https://index.docker.io/v1/", "index.docker.io", "docker.io"}
    for name, entry in auths.items():
        if name.rstrip("/").removesuffix("/v1") in {n.rstrip("/").removesuffix("/v1") for n in names}:
            if isinstance(entry, dict) and entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, password
            if isinstance(entry, dict) and entry.get("username"):
                return str(entry["username"]), str(entry.get("password") or "")
    return None


def _this_platform() -> str:
    return f"linux/{_ARCHITECTURES.get(platform.machine().lower(), platform.machine().lower())}"


def _for_this_platform(manifests: list) -> str | None:
    """The digest of the index's manifest for this machine (linux, its architecture)."""
    wanted = _this_platform()
    for entry in manifests:
        found = entry.get("platform") or {} if isinstance(entry, dict) else {}
        if f"{found.get('os')}/{found.get('architecture')}" == wanted:
            return str(entry["digest"])
    return None
