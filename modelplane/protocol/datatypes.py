"""The V2 tensor datatypes and their numpy equivalents."""

from __future__ import annotations

import struct
from functools import cache
from itertools import chain

import numpy as np

from modelplane.protocol.errors import InferenceError, InvalidInput

DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "BF16",
    "FP32",
    "FP64",
    "BYTES",
)
_NUMPY_TYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}

# Half-precision floats have no exact JSON form here (as in Triton): they travel as binary data only.
BINARY_ONLY_DATATYPES = ("FP16", "BF16")

_DTYPE_TO_DATATYPE: dict[np.dtype, str] = {
    np.dtype(kind): name for name, kind in _NUMPY_TYPES.items() if name != "BYTES"
}


@cache
def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype of a V2 datatype (KeyError for another name). BF16 is ml_dtypes' bfloat16, the
    type numpy lacks (the one JAX and TensorFlow use), imported the first time a BF16 tensor comes:
    importing it takes half a second, which every server and replica would otherwise pay at start."""
    if datatype == "BF16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(_NUMPY_TYPES[datatype])


@cache
def _wire_dtype(datatype: str) -> np.dtype:
    """The little-endian dtype for reading raw tensor bytes off the wire."""
    return numpy_dtype(datatype).newbyteorder("<")


_LENGTH_PREFIX = struct.Struct("<I")


def normalize_datatype(datatype: object) -> str:
    """The upper-cased datatype name, or InvalidInput naming what is wrong."""
    if not isinstance(datatype, str):
        raise InvalidInput(f"datatype must be a string, got {datatype!r}")
    name = datatype.upper()
    if name not in DATATYPES:
        raise InvalidInput(f"unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}")
    return name


def datatype_of(array: np.ndarray) -> str:
    """The V2 datatype for a numpy array's dtype (strings and objects are BYTES)."""
    dtype = array.dtype
    if dtype.kind in "OSUMm":
        return "BYTES"
    found = _DTYPE_TO_DATATYPE.get(dtype.newbyteorder("="))
    if found is not None:
        return found
    if dtype.name == "bfloat16":  # ml_dtypes' (an array of it means it is imported)
        return "BF16"
    raise InferenceError(f"cannot send numpy dtype {dtype} as a V2 tensor")


# The most dimensions a tensor may have: numpy's own limit.
MAX_DIMENSIONS = 64
# The most elements a shape may describe, counting a dimension of 0 as 1: far beyond any request's
# data, and well inside what numpy can index. (A shape such as [0, 2**63 - 1] holds no element but
# still cannot be made, and [2**31, 0] would make a model answer two billion rows.)
MAX_SHAPE_ELEMENTS = 2**31


def shape_problem(shape: list[int]) -> str | None:
    """What is wrong with a tensor's shape (a list of ints), or None."""
    if any(dim < 0 for dim in shape):
        return f"shape must not have negative dimensions, got {shape}"
    if len(shape) > MAX_DIMENSIONS:
        return f"a shape of {len(shape)} dimensions; at most {MAX_DIMENSIONS} are supported"
    extent = 1
    for dim in shape:
        extent *= max(dim, 1)
        if extent > MAX_SHAPE_ELEMENTS:
            return f"shape {shape} describes more than {MAX_SHAPE_ELEMENTS} elements (counting a 0 as 1)"
    return None


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
    dtype = _wire_dtype(datatype)
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"binary data of {len(raw)} bytes does not match shape {list(shape)} of {datatype} "
            f"({count * dtype.itemsize} bytes expected)"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def as_datatype(array: np.ndarray, datatype: str) -> np.ndarray:
    """A numeric tensor in its datatype's numpy type, as the binary extension sends it: a model may
    answer float64 values for an FP32 output, or integers for a BOOL one, and JSON and gRPC's typed
    contents must then carry what binary data carries."""
    dtype = numpy_dtype(datatype)
    return array if array.dtype == dtype else array.astype(dtype)


def array_to_raw(array: np.ndarray, datatype: str) -> bytes:
    """The wire bytes of a tensor: little-endian elements, or length-prefixed BYTES elements."""
    if datatype == "BYTES":
        return serialize_bytes_tensor(array)
    return np.ascontiguousarray(array, dtype=_wire_dtype(datatype)).tobytes()


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


def hides_booleans(array: np.ndarray, written: object) -> bool:
    """Whether `array`, the numbers numpy made of the JSON value `written`, holds a JSON boolean numpy
    quietly read as 1 or 0 (it does so for a list of booleans mixed with numbers)."""
    if array.dtype.kind not in "iuf" or not array.ndim:
        return False  # a lone boolean makes an array of booleans
    # A boolean can only hide behind a 0 or a 1: for a large array a numpy comparison tells at a fraction
    # of the cost of looking at the type of every JSON value.
    if array.size > 64 and not ((array == 0) | (array == 1)).any():
        return False
    values = written
    for _ in range(array.ndim - 1):  # numpy made an array of it, so the nesting is regular
        values = chain.from_iterable(values)
    return bool in map(type, values)
