"""Reading a large JSON body of numbers without holding every number as a Python object at once.

A JSON parser makes a Python float or int of each number, 32 bytes with its place in a list (and a
list object for each row of a nested array): a body of numbers needs about fifteen times its size
while it is read, so that a request well under the body limit could take a replica past its memory
limit. Here the arrays of numbers of a large body are cut out of it and read a slice at a time, each
slice's numbers going into numpy before the next is read; the rest of the document is read as usual:

- V2 (`load_v2`): the flat `data` arrays of the tensors (what tritonclient, KServe's client and
  MLServer's codecs send);
- V1 (`load_v1`): `instances` given as an array of numbers or of rows (of rows...) of numbers, for the
  models that read instances as one array (`Model.reads_v1_instances_as_array`).

The numbers are read by the same parser, so what is accepted, and the values, are the same. Anything
out of the ordinary (strings, null, booleans, NaN, integers beyond 64 bits, ragged rows) is left to the
ordinary reading: the functions then say None.
"""

from __future__ import annotations

import re

import numpy as np
import orjson

LEAN_BODY_SIZE = 1 << 20  # bodies from this many bytes have their large data arrays read lean
LEAN_ARRAY_SIZE = 64 << 10  # a data array of fewer bytes is read as part of the document
SLICE_SIZE = 1 << 20  # about how many bytes of an array are read at once

_DATA_KEY = b'"data"'
_INSTANCES_KEY = b'"instances"'
_NUMBER_TEXT = b"0123456789.eE+-, \t\r\n"  # all a flat array of JSON numbers is written with
_NOT_ARRAY_TEXT = re.compile(rb"[^0-9.eE+\-,\[\] \t\r\n]")  # ... and of nested arrays, with brackets
_PLACEHOLDER = "\u0000modelplane lean data %d"  # a NUL is never in a JSON string unescaped


def load_v2(document: bytes | memoryview) -> object | None:
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


def load_v1(document: bytes) -> dict | None:
    """The V1 request, its large `instances` as one numpy array; None when the body is small, its
    instances are not an array of numbers or of regular rows of numbers, or anything else about them is
    out of the ordinary (the caller reads it as usual)."""
    if len(document) < LEAN_BODY_SIZE:
        return None
    found = document.find(_INSTANCES_KEY)
    while found != -1:
        opening = _after_colon(document, found + len(_INSTANCES_KEY))
        if opening is not None and document[opening : opening + 1] == b"[":
            break
        found = document.find(_INSTANCES_KEY, found + 1)
    else:
        return None
    outside = _NOT_ARRAY_TEXT.search(document, opening)
    closing = document.rfind(b"]", opening, len(document) if outside is None else outside.start())
    if closing - opening < LEAN_ARRAY_SIZE:
        return None
    instances = _rows(document, opening + 1, closing)
    if instances is None:
        return None
    rest = document[:opening] + orjson.dumps(_PLACEHOLDER % 0) + document[closing + 1 :]
    try:
        parsed = orjson.loads(rest)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or parsed.get("instances") != _PLACEHOLDER % 0:
        return None
    parsed["instances"] = instances
    return parsed


def _rows(body: bytes, start: int, end: int) -> np.ndarray | None:
    """The array of the values (numbers, or rows of them) between `start` and `end`, read a slice of
    whole values at a time; None unless every slice reads as numbers numpy holds as integers or floats,
    in rows of one shape."""
    parts: list[np.ndarray] = []
    position = start
    while True:
        cut = _next_cut(body, position, end)
        try:
            values = orjson.loads(b"[" + body[position : end if cut == -1 else cut] + b"]")
            part = np.asarray(values)
        except (orjson.JSONDecodeError, ValueError):  # not JSON, or ragged rows
            return None
        if not values or part.dtype.kind not in "if" or (parts and part.shape[1:] != parts[0].shape[1:]):
            return None
        parts.append(part)
        if cut == -1:
            return parts[0] if len(parts) == 1 else np.concatenate(parts)
        position = cut + 1


def _next_cut(body: bytes, position: int, end: int) -> int:
    """The first comma between two values of the array (not within a row) about a slice's length past
    `position`, the start of a value; -1 if there is none before `end`."""
    comma = body.find(b",", min(position + SLICE_SIZE, end), end)
    depth = 0
    counted = position
    while comma != -1:
        depth += body.count(b"[", counted, comma) - body.count(b"]", counted, comma)
        counted = comma
        if depth == 0:
            return comma
        row_end = body.find(b"]", comma, end)
        comma = -1 if row_end == -1 else body.find(b",", row_end, end)
    return -1


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
