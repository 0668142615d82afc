"""The V2 tensor datatypes and their numpy equivalents."""

from __future__ import annotations

import struct

import ml_dtypes
import numpy as np

from modelplane.protocol.errors import InferenceError, InvalidInput

# BF16 is ml_dtypes' bfloat16, the type numpy lacks (the one JAX and TensorFlow use).
DATATYPE_TO_DTYPE: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}

# Half-precision floats have no exact JSON form here (as in Triton): they travel as binary data only.
BINARY_ONLY_DATATYPES = ("FP16", "BF16")

_DTYPE_TO_DATATYPE: dict[np.dtype, str] = {
    dtype: name for name, dtype in DATATYPE_TO_DTYPE.items() if name != "BYTES"
}
# Little-endian dtypes for reading raw tensor bytes off the wire.
_WIRE_DTYPE: dict[str, np.dtype] = {
    name: dtype.newbyteorder("<") for name, dtype in DATATYPE_TO_DTYPE.items() if name != "BYTES"
}

_LENGTH_PREFIX = struct.Struct("<I")


def normalize_datatype(datatype: object) -> str:
    """The upper-cased datatype name, or InvalidInput naming what is wrong."""
    if not isinstance(datatype, str):
        raise InvalidInput(f"datatype must be a string, got {datatype!r}")
    name = datatype.upper()
    if name not in DATATYPE_TO_DTYPE:
        raise InvalidInput(f"unknown datatype {datatype!r}; expected one of {', '.join(DATATYPE_TO_DTYPE)}")
    return name


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype for a numpy array's dtype (strings and objects are BYTES)."""
    dtype = array.dtype
    if dtype.kind in "OSUMm":
        return "BYTES"
    try:
        return _DTYPE_TO_DATATYPE[dtype.newbyteorder("=")]
    except KeyError:
        raise InferenceError(f"cannot send numpy dtype {dtype} as a V2 tensor") from None


# The most dimensions a tensor may have: numpy's own limit.
MAX_DIMENSIONS = 64


def element_count(shape: list[int] | tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def array_from_raw(raw: bytes | memoryview, datatype: str, shape: list[int]) -> np.ndarray:
    """Decode one tensor of the binary extension (or gRPC raw contents) without copying."""
    count = element_count(shape)
    if datatype == "BYTES":
        return np.array(deserialize_bytes_tensor(raw, count), dtype=np.object_).reshape(shape)
    dtype = _WIRE_DTYPE[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"binary data of {len(raw)} bytes does not match shape {list(shape)} of {datatype} "
            f"({count * dtype.itemsize} bytes expected)"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def array_to_raw(array: np.ndarray, datatype: str) -> bytes:
    """The wire bytes of a tensor: little-endian elements, or length-prefixed BYTES elements."""
    if datatype == "BYTES":
        return serialize_bytes_tensor(array)
    return np.ascontiguousarray(array, dtype=_WIRE_DTYPE[datatype]).tobytes()


def serialize_bytes_tensor(array: np.ndarray) -> bytes:
    parts = []
    for item in array.flat:
        if isinstance(item, str):
            item = item.encode()
        elif not isinstance(item, bytes):
            item = str(item).encode()
        parts.append(_LENGTH_PREFIX.pack(len(item)))
        parts.append(item)
    return b"".join(parts)


def deserialize_bytes_tensor(raw: bytes | memoryview, count: int) -> list[bytes]:
    raw = memoryview(raw)
    items: list[bytes] = []
    offset, end = 0, len(raw)
    while offset < end:
        if offset + 4 > end:
            raise InvalidInput("BYTES tensor is truncated: an element's 4-byte length is cut off")
        (length,) = _LENGTH_PREFIX.unpack_from(raw, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInput(f"BYTES tensor is truncated: an element of {length} bytes is cut off")
        items.append(bytes(raw[offset : offset + length]))
        offset += length
    if len(items) != count:
        raise InvalidInput(f"BYTES tensor holds {len(items)} elements but its shape needs {count}")
    return items
