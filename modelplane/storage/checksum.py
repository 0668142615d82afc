"""Checksums a storage announces for an object, and the hashers that check them."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Protocol


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


@dataclass(frozen=True)
class Checksum:
    """The digest an object should have, as the storage reports it."""

    algorithm: str  # "md5", "sha256" or "crc32c"
    expected: bytes

    @classmethod
    def from_hex(cls, algorithm: str, value: str) -> Checksum | None:
        try:
            return cls(algorithm, bytes.fromhex(value))
        except ValueError:
            return None

    @classmethod
    def from_base64(cls, algorithm: str, value: str | bytes | None) -> Checksum | None:
        if not value:
            return None
        try:
            return cls(algorithm, base64.b64decode(value, validate=True))
        except ValueError:
            return None

    def hasher(self) -> Hasher | None:
        """A fresh hasher for this algorithm, or None when it cannot be computed here."""
        if self.algorithm in ("md5", "sha256"):
            return hashlib.new(self.algorithm)
        if self.algorithm == "crc32c":
            try:
                import google_crc32c
            except ImportError:
                return None
            return _Crc32c(google_crc32c.Checksum())
        return None

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.expected.hex()}"


class _Crc32c:
    def __init__(self, checksum) -> None:
        self._checksum = checksum

    def update(self, data: bytes, /) -> None:
        self._checksum.update(data)

    def digest(self) -> bytes:
        return self._checksum.digest()
