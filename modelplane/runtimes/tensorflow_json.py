"""TF Serving's REST predict format, on the V1 route: requests in the row (`instances`) or columnar
(`inputs`) format, `{"b64": ...}` for binary strings, and answers shaped as TF Serving shapes them
(`{"predictions": ...}` for rows, `{"outputs": ...}` for columns; a single output is a plain value, several
are keyed by output name).

JSON values are converted to the dtype the signature declares, with TF Serving's rules: any number for a
float, whole numbers for an integer (in range), true/false for a bool, strings or `{"b64": ...}` for a
string.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

from modelplane.protocol import base64_text
from modelplane.protocol.datatypes import DATATYPES, hides_booleans, numpy_dtype
from modelplane.protocol.errors import InvalidInput
from modelplane.runtimes.tensorflow_signature import TensorInfo

REQUEST_KEYS = ("signature_name", "instances", "inputs")
# TF Serving writes the string outputs whose name ends so as base64 objects.
BYTES_SUFFIX = "_bytes"
# numpy's limit on dimensions; deeper JSON lists cannot be a tensor.
_MAX_RANK = 64

_KINDS = {
    "b": "true/false",
    "i": "whole numbers",
    "u": "whole numbers",
    "f": "decimal numbers",
    "U": "strings",
    "S": "strings",
    "O": "null, objects or a mix of types",
}


def read_body(body: bytes, content_type: str) -> Any:
    """A body the server passed on unparsed, for its content type is not JSON's (text/plain, as a
    browser's fetch() sends): TF Serving reads every body as JSON, whatever its type."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"the request body ({content_type or 'no content type'}) is not JSON: {exc}"
        ) from None


def signature_name(body: dict) -> str | None:
    """The request's `signature_name`, if it names one."""
    name = body.get("signature_name")
    if name is not None and not isinstance(name, str):
        raise InvalidInput(f"'signature_name' must be a string, got {name!r}")
    return name or None


def decode_request(body: Any, inputs: list[TensorInfo]) -> tuple[dict[str, np.ndarray], bool]:
    """The request's tensors keyed by input name, and whether it used the row format."""
    if not isinstance(body, dict):
        raise InvalidInput('a request must be a JSON object with "instances" or "inputs"')
    unknown = [key for key in body if key not in REQUEST_KEYS]
    if unknown:
        raise InvalidInput(
            f"unknown key(s) {', '.join(map(repr, unknown))} in the request; a TensorFlow model takes "
            '"signature_name" and one of "instances" or "inputs"'
        )
    if "instances" in body and "inputs" in body:
        raise InvalidInput('a request has one of "instances" (rows) or "inputs" (columns), not both')
    if "instances" in body:
        return _rows(body["instances"], inputs), True
    if "inputs" in body:
        return _columns(body["inputs"], inputs), False
    raise InvalidInput('the request has neither "instances" nor "inputs"')


def _is_named(value: Any) -> bool:
    """A JSON object of named tensors (a lone `{"b64": "..."}` is a value, not a name)."""
    return isinstance(value, dict) and not _is_b64(value)


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _rows(instances: Any, inputs: list[TensorInfo]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise InvalidInput('"instances" must be a list')
    if not instances:
        raise InvalidInput('"instances" is empty')
    if not _is_named(instances[0]):
        if len(inputs) > 1:
            raise InvalidInput(
                f'"instances" is a plain list, but the signature takes several inputs '
                f"({_names(inputs)}): send a list of objects keyed by input name"
            )
        for index, item in enumerate(instances):
            if _is_named(item):
                raise InvalidInput(f"instances[{index}] is an object, but instances[0] is not")
        info = inputs[0]
        return {info.name: tensor_from_json(instances, info, f"input {info.name!r}")}
    expected = {info.name for info in inputs}
    columns: dict[str, list] = {info.name: [] for info in inputs}
    for index, item in enumerate(instances):
        if not _is_named(item):
            raise InvalidInput(f"instances[{index}] is not an object keyed by input name, as instances[0] is")
        if set(item) != expected:
            raise InvalidInput(f"instances[{index}] {_key_mismatch(item, inputs)}")
        for name, value in item.items():
            columns[name].append(value)
    return {
        info.name: tensor_from_json(columns[info.name], info, f"input {info.name!r} (one value per instance)")
        for info in inputs
    }


def _columns(value: Any, inputs: list[TensorInfo]) -> dict[str, np.ndarray]:
    if _is_named(value):
        if set(value) != {info.name for info in inputs}:
            raise InvalidInput(f'"inputs" {_key_mismatch(value, inputs)}')
        return {
            info.name: tensor_from_json(value[info.name], info, f"input {info.name!r}") for info in inputs
        }
    if len(inputs) > 1:
        raise InvalidInput(
            f'"inputs" is a single tensor, but the signature takes several inputs ({_names(inputs)}): '
            "send an object keyed by input name"
        )
    info = inputs[0]
    return {info.name: tensor_from_json(value, info, f"input {info.name!r}")}


def _names(inputs: list[TensorInfo]) -> str:
    return ", ".join(info.name for info in inputs)


def _key_mismatch(given: dict, inputs: list[TensorInfo]) -> str:
    expected = [info.name for info in inputs]
    missing = [name for name in expected if name not in given]
    unknown = [name for name in given if name not in expected]
    problems = []
    if missing:
        problems.append(f"lacks {', '.join(map(repr, missing))}")
    if unknown:
        problems.append(f"has unknown {', '.join(map(repr, unknown))}")
    return f"{' and '.join(problems)}; the signature's inputs are: {', '.join(expected)}"


def tensor_from_json(value: Any, info: TensorInfo, what: str) -> np.ndarray:
    """A JSON value (a scalar or nested lists) as an array of the input's dtype."""
    if info.dtype == "string":
        return _strings(value, what)
    if info.datatype not in DATATYPES:
        raise InvalidInput(f"{what} is {info.dtype}, which cannot be sent as JSON")
    dtype = numpy_dtype(info.datatype)
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(
            f"{what} is not a tensor: its nested lists are not all of the same length"
        ) from None
    kind = array.dtype.kind
    if array.size == 0:
        return array.astype(dtype)
    wanted_kind = "f" if info.datatype == "BF16" else dtype.kind  # ml_dtypes' bfloat16 is of kind "V"
    if wanted_kind != "b" and hides_booleans(array, value):
        kind = "b"  # booleans among the numbers, read as 1 and 0: refused as booleans are
    if wanted_kind == "f" and kind in "iuf":
        return _to_float(array, dtype, what)
    if wanted_kind in "iu" and kind in "iu":
        return _to_integer(array, dtype, what)
    if wanted_kind == "b" and kind == "b":
        return array
    wanted = {"f": "numbers", "i": "whole numbers", "u": "whole numbers", "b": "true/false"}[wanted_kind]
    raise InvalidInput(f"{what} is {info.dtype}: it takes {wanted}, got {_KINDS.get(kind, kind)}")


def _to_float(array: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    info = np.finfo(dtype)
    if array.dtype.kind in "iu":
        exact = 2 ** (info.nmant + 1)  # whole numbers beyond this lose precision (TF Serving refuses them)
        if np.any(np.abs(array.astype(np.float64)) > exact):
            raise InvalidInput(f"{what}: a whole number above {exact} does not fit {dtype.name} exactly")
    elif np.any(np.isfinite(array) & (np.abs(array) > info.max)):
        raise InvalidInput(f"{what}: a number beyond {dtype.name}'s range ({info.max:g})")
    return array.astype(dtype)


def _to_integer(array: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    info = np.iinfo(dtype)
    if int(array.min()) < info.min or int(array.max()) > info.max:
        raise InvalidInput(f"{what}: a number outside {dtype.name}'s range [{info.min}, {info.max}]")
    return array.astype(dtype)


def _strings(value: Any, what: str) -> np.ndarray:
    """String leaves (UTF-8 encoded) and `{"b64": ...}` objects (decoded) as an array of bytes."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if len(shape) > _MAX_RANK:
            raise InvalidInput(f"{what} is nested more than {_MAX_RANK} lists deep")
        if not probe:
            break
        probe = probe[0]
    items: list[bytes] = []
    _fill_strings(value, shape, 0, items, what)
    array = np.empty(len(items), dtype=np.object_)
    array[:] = items
    return array.reshape(shape)


def _fill_strings(value: Any, shape: list[int], level: int, items: list[bytes], what: str) -> None:
    if isinstance(value, list):
        if level >= len(shape) or len(value) != shape[level]:
            raise InvalidInput(f"{what} is not a tensor: its nested lists are not all of the same length")
        for item in value:
            _fill_strings(item, shape, level + 1, items, what)
        return
    if level != len(shape):
        raise InvalidInput(f"{what} is not a tensor: its nested lists are not all of the same length")
    if isinstance(value, str):
        items.append(value.encode())
    elif _is_b64(value):
        items.append(_b64decode(value["b64"], what))
    else:
        raise InvalidInput(f'{what} is string: it takes strings or {{"b64": ...}} objects, got {value!r}')


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64_text.decode(text + "=" * (-len(text) % 4), strict=True)
    except (base64_text.Error, ValueError):
        raise InvalidInput(f'{what}: {{"b64": ...}} holds text that is not base64') from None


def encode_response(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    """TF Serving's answer: `{"predictions": [...]}` (one entry per row) for a row request,
    `{"outputs": ...}` for a columnar one."""
    values = {name: _json_values(name, array) for name, array in outputs.items()}
    if not row_format:
        if len(values) == 1:
            return {"outputs": next(iter(values.values()))}
        return {"outputs": values}
    batch = None
    for name, array in outputs.items():
        if array.ndim == 0:
            raise InvalidInput(
                f'output {name!r} is a scalar, which has no rows to answer "instances" with; '
                'send the request in the columnar format ("inputs")'
            )
        if batch is not None and len(array) != batch:
            raise InvalidInput(
                f"the outputs have different numbers of rows ({batch} and {len(array)} for {name!r}); "
                'send the request in the columnar format ("inputs")'
            )
        batch = len(array)
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: column[row] for name, column in values.items()} for row in range(batch)]}


def _json_values(name: str, array: np.ndarray) -> Any:
    """An output as what the JSON encoder writes: numeric arrays as they are (float32 stays short,
    0.2 rather than 0.20000000298023224), strings as text or `{"b64": ...}`."""
    if array.dtype.kind in "OSU":
        as_bytes = name.endswith(BYTES_SUFFIX)
        return _map_leaves(array.tolist(), lambda item: _string_value(item, as_bytes))
    if array.dtype.kind == "V":  # bfloat16
        array = array.astype(np.float32)
    if array.ndim == 0:
        return array[()]  # a numpy scalar
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


def _string_value(item: Any, as_bytes: bool) -> Any:
    if isinstance(item, str):
        item = item.encode()
    if not as_bytes:
        try:
            return item.decode()
        except UnicodeDecodeError:
            pass  # not text: sent as base64, as a `_bytes` output would be
    return {"b64": base64.b64encode(item).decode()}


def _map_leaves(value: Any, function) -> Any:
    if isinstance(value, list):
        return [_map_leaves(item, function) for item in value]
    return function(value)
