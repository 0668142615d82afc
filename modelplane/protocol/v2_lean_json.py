"""Reading a large V2 JSON body without holding every number as a Python object at once.

A JSON parser makes a Python float or int of each number, 32 bytes with its place in a list, and
orjson builds its own document first: a body of numbers needs about fifteen times its size while it is
read, so that a request well under the body limit could take a replica past its memory limit. Here the
flat `data` arrays of a large body (what tritonclient, KServe's client and MLServer's codecs send) are
cut out of it and read a slice at a time, each slice's numbers going into a numpy array before the next
is read; the rest of the document is read as usual. The numbers are read by the same parser, so what
is accepted, and the values, are the same. Anything out of the ordinary (nested data, strings, null,
booleans, NaN, integers beyond 64 bits) is left to the ordinary reading: `load` then says None.
"""

from __future__ import annotations

import numpy as np
import orjson

LEAN_BODY_SIZE = 1 << 20  # bodies from this many bytes have their large data arrays read lean
LEAN_ARRAY_SIZE = 64 << 10  # a data array of fewer bytes is read as part of the document
SLICE_SIZE = 1 << 20  # about how many bytes of an array are read at once

_DATA_KEY = b'"data"'
_NUMBER_TEXT = b"0123456789.eE+-, \t\r\n"  # all a flat array of JSON numbers is written with
_PLACEHOLDER = "\u0000modelplane lean data %d"  # a NUL is never in a JSON string unescaped


def load(document: bytes | memoryview) -> object | None:
    """The JSON document, its large flat `data` arrays of numbers as numpy arrays; None when it has none
    or anything about them is out of the ordinary (the caller reads it as usual)."""
    if len(document) < LEAN_BODY_SIZE:
        return None
    body = bytes(document) if isinstance(document, memoryview) else document
    arrays: list[np.ndarray] = []
    pieces: list[bytes] = []
    done = 0
    for start, end in _flat_arrays(body):
        array = _numbers(body, start, end)
        if array is None:
            return None
        pieces += [body[done : start - 1], orjson.dumps(_PLACEHOLDER % len(arrays))]
        arrays.append(array)
        done = end + 1
    if not arrays:
        return None
    pieces.append(body[done:])
    try:
        parsed = orjson.loads(b"".join(pieces))
    except orjson.JSONDecodeError:
        return None
    return parsed if _put_back(parsed, arrays) else None


def _flat_arrays(body: bytes):
    """(start, end) of the contents of each large `"data": [...]` array holding nothing but numbers."""
    found = body.find(_DATA_KEY)
    while found != -1:
        after = found + len(_DATA_KEY)
        opening = _after_colon(body, after)
        if opening is not None and body[opening : opening + 1] == b"[":
            start = opening + 1
            end = body.find(b"]", start)
            if end - start >= LEAN_ARRAY_SIZE and not body[start:end].translate(None, _NUMBER_TEXT):
                yield start, end
                after = end + 1
        found = body.find(_DATA_KEY, after)


def _after_colon(body: bytes, position: int) -> int | None:
    """Where the value after the `:` at `position` begins (past whitespace), or None if no colon is
    there (the text was a string's, not a key)."""
    position = _past_whitespace(body, position)
    if body[position : position + 1] != b":":
        return None
    return _past_whitespace(body, position + 1)


def _past_whitespace(body: bytes, position: int) -> int:
    while body[position : position + 1].isspace():
        position += 1
    return position


def _numbers(body: bytes, start: int, end: int) -> np.ndarray | None:
    """The numbers between `start` and `end`, read a slice at a time into one array (of integers while
    they all are); None unless each slice reads as a non-empty list of numbers numpy holds as integers
    or floats."""
    numbers: np.ndarray | None = None
    filled = 0
    position = start
    while True:
        cut = body.find(b",", min(position + SLICE_SIZE, end), end)
        try:
            values = orjson.loads(b"[" + body[position : end if cut == -1 else cut] + b"]")
        except orjson.JSONDecodeError:
            return None
        if not values:  # nothing between two commas, or after the last one
            return None
        part = np.asarray(values)
        if part.dtype.kind not in "if":
            return None
        if numbers is None:  # as many numbers as there are commas, and one
            numbers = np.empty(body.count(b",", start, end) + 1, part.dtype)
        elif part.dtype.kind == "f" and numbers.dtype.kind == "i":
            numbers = numbers.astype(part.dtype)
        numbers[filled : filled + part.size] = part
        filled += part.size
        if cut == -1:
            return numbers
        position = cut + 1


def _put_back(document: object, arrays: list[np.ndarray]) -> bool:
    """Puts each array where its placeholder is, as the `data` of a tensor of `inputs` or `outputs`;
    False unless every placeholder is found there, once."""
    if not isinstance(document, dict):
        return False
    waiting = {_PLACEHOLDER % index: array for index, array in enumerate(arrays)}
    for key in ("inputs", "outputs"):
        tensors = document.get(key)
        for tensor in tensors if isinstance(tensors, list) else ():
            data = tensor.get("data") if isinstance(tensor, dict) else None
            if isinstance(data, str) and data in waiting:
                tensor["data"] = waiting.pop(data)
    return not waiting
