"""The storageUri check the controller makes before a model is fetched (not an admission rule)."""

from __future__ import annotations

import re

SUPPORTED_PREFIXES = (
    "gs://",
    "s3://",
    "pvc://",
    "file://",
    "https://",
    "http://",
    "hdfs://",
    "webhdfs://",
    "oci://",
    "oci+native://",
    "oci+fetch://",
    "hf://",
)
_SCHEME = re.compile(r"\w+?://")
_AZURE_BLOB = re.compile(r"https://(.+?).blob.core.windows.net/(.+)")


def storage_uri_problem(uri: str | None) -> str | None:
    """Why a storageUri cannot be fetched, in KServe's words; None when it can (or when there is none).

    A local path, any supported scheme, and the Azure blob URL form are fine.
    """
    if uri is None or not _SCHEME.search(uri):
        return None
    if "blob.core.windows.net" in uri:
        if _AZURE_BLOB.search(uri):
            return None
    elif uri.startswith(SUPPORTED_PREFIXES):
        return None
    return (
        f"storageUri, must be one of: [{', '.join(SUPPORTED_PREFIXES)}] or match "
        "https://{}.blob.core.windows.net/{}/{} or be an absolute or relative local path. "
        f"StorageUri [{uri}] is not supported"
    )
