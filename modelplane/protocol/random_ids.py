"""Random (version 4) UUIDs for request and response ids, made without a system call.

`uuid.uuid4()` reads 16 bytes from the kernel each time; an id that names a request for logs and
traces needs no secrecy, so the `random` module's generator is random enough, and costs a tenth.
"""

from __future__ import annotations

from random import getrandbits

_VERSION_4 = 0x4000 << 64
_VERSION_BITS = 0xF000 << 64
_RFC_4122_VARIANT = 0x8000 << 48
_VARIANT_BITS = 0xC000 << 48


def random_uuid_bytes() -> bytes:
    """A version 4 UUID in its text form, as ASCII bytes."""
    value = (getrandbits(128) & ~_VERSION_BITS & ~_VARIANT_BITS) | _VERSION_4 | _RFC_4122_VARIANT
    digits = b"%032x" % value
    return b"-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))


def random_uuid() -> str:
    """A version 4 UUID in its text form."""
    return random_uuid_bytes().decode("ascii")
