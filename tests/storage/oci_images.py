"""Pushing small images to a registry over the distribution API, as `docker push` would."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import tarfile

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ARCHITECTURE = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def layer(files: dict[str, bytes | str | None], *, compress: bool = True) -> bytes:
    """A layer: each path with its bytes, a folder for None, or a symlink for "-> target"."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content.removeprefix("-> ")
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    data = buffer.getvalue()
    return gzip.compress(data) if compress else data


def digest(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def push_blob(registry: str, repository: str, blob: bytes, auth: httpx.Auth | None = None) -> str:
    started = httpx.post(f"{registry}/v2/{repository}/blobs/uploads/", auth=auth)
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    location = location if location.startswith("http") else registry + location
    joiner = "&" if "?" in location else "?"
    done = httpx.put(f"{location}{joiner}digest={digest(blob)}", content=blob, auth=auth)
    assert done.status_code == 201, done.text
    return digest(blob)


def push_manifest(
    registry: str,
    repository: str,
    reference: str,
    manifest: dict,
    media_type: str,
    auth: httpx.Auth | None = None,
) -> str:
    body = json.dumps(manifest).encode()
    pushed = httpx.put(
        f"{registry}/v2/{repository}/manifests/{reference}",
        content=body,
        headers={"content-type": media_type},
        auth=auth,
    )
    assert pushed.status_code == 201, pushed.text
    return digest(body)


def push_image(
    registry: str, repository: str, tag: str, layers: list[bytes], auth: httpx.Auth | None = None
) -> str:
    """An image of `layers` under `tag`; returns its manifest's digest."""
    config = json.dumps({"architecture": ARCHITECTURE, "os": "linux", "rootfs": {"type": "layers"}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": push_blob(registry, repository, config, auth),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar"
                + ("+gzip" if blob[:2] == b"\x1f\x8b" else ""),
                "digest": push_blob(registry, repository, blob, auth),
                "size": len(blob),
            }
            for blob in layers
        ],
    }
    return push_manifest(registry, repository, tag, manifest, OCI_MANIFEST, auth)


def push_index(registry: str, repository: str, tag: str, images: dict[str, str]) -> str:
    """An index of `images` (architecture: manifest digest, each pushed before) under `tag`."""
    manifests = []
    for architecture, manifest_digest in images.items():
        size = int(
            httpx.head(
                f"{registry}/v2/{repository}/manifests/{manifest_digest}", headers={"accept": OCI_MANIFEST}
            ).headers["content-length"]
        )
        manifests.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": size,
                "platform": {"os": "linux", "architecture": architecture},
            }
        )
    return push_manifest(
        registry,
        repository,
        tag,
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests},
        OCI_INDEX,
    )
