"""V2 (Open Inference Protocol) request and response types.

`InferRequest` and `InferResponse` are what a model's `predict` receives and returns on V2, whether the
request came over REST (JSON, or JSON plus the binary tensor extension) or gRPC. Tensors are numpy
arrays; binary tensor bytes are wrapped with `numpy.frombuffer`, never copied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelplane.protocol.datatypes import (
    BINARY_ONLY_DATATYPES,
    DATATYPES,
    array_from_raw,
    datatype_of,
    element_count,
    hides_booleans,
    normalize_datatype,
    numpy_dtype,
    shape_problem,
)
from modelplane.protocol.errors import InferenceError, InvalidInput
from modelplane.protocol.random_ids import random_uuid
from modelplane.protocol.v2_parameters import (
    check_input_parameters,
    check_output_parameters,
    check_request_parameters,
)

Parameters = dict[str, Any]


def _check_shape(shape: object, what: str) -> list[int]:
    if not isinstance(shape, list) or not all(type(dim) is int and dim >= 0 for dim in shape):
        raise InvalidInput(f"{what}: shape must be a list of non-negative integers, got {shape!r}")
    problem = shape_problem(shape)
    if problem is not None:
        raise InvalidInput(f"{what}: {problem}")
    return shape


def check_parameters(parameters: object, what: str) -> Parameters | None:
    """Parameters are a flat map of str, int, float or bool values."""
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{what}: parameters must be an object, got {type(parameters).__name__}")
    for key, value in parameters.items():
        if not isinstance(value, str | int | float | bool):
            raise InvalidInput(
                f"{what}: parameter {key!r} must be a string, number or boolean, got {type(value).__name__}"
            )
    return parameters


def _flatten(data: list) -> list:
    flat: list = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def array_from_json(data: object, datatype: str, shape: list[int], what: str) -> np.ndarray:
    """A JSON `data` list (flat or nested) as a numpy array of `shape`; or the numpy array a large body's
    flat list of numbers was read as (`lean_json`)."""
    if isinstance(data, np.ndarray) and not _numbers_fit(data, datatype):
        data = data.tolist()  # read as any list is, for the refusal that says why
    if not isinstance(data, (list, np.ndarray)):
        raise InvalidInput(f"{what}: data must be a list, got {type(data).__name__}")
    count = element_count(shape)
    if datatype == "BYTES":
        items = _flatten(data)
        array = np.empty(len(items), dtype=np.object_)
        for index, item in enumerate(items):
            if isinstance(item, str):
                item = item.encode()
            elif not isinstance(item, bytes):
                raise InvalidInput(f"{what}: BYTES data must hold strings, got {item!r}")
            array[index] = item
    elif datatype in BINARY_ONLY_DATATYPES:
        raise InvalidInput(
            f"{what}: {datatype} data cannot be sent as JSON; send it with the binary tensor extension"
        )
    else:
        array = _numbers_from_json(data, numpy_dtype(datatype), datatype, what)
    if array.size != count:
        raise InvalidInput(f"{what}: data has {array.size} elements but shape {shape} needs {count}")
    return array.reshape(shape)


# The kinds of array numpy makes of JSON values that each kind of datatype takes: booleans for BOOL,
# integers for the integer types, any number for the floating ones. JSON has no NaN or infinity: the
# floating types also take null, as NaN, which is what orjson writes for them (KServe's client and
# server, and modelplane's own answers) and what KServe's server reads it as. (The NaN and Infinity
# literals of Python's json arrive here as floats: v2_rest reads them.)
_JSON_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}
_JSON_VALUES = {"b": "true or false", "i": "integers", "u": "integers", "f": "numbers"}


def _numbers_from_json(data: list, dtype: np.dtype, datatype: str, what: str) -> np.ndarray:
    """JSON numbers (or booleans) as an array of `dtype`; a value of another type (a string, null but
    for a floating type, where it is NaN, a fraction for an integer type, a number for BOOL, a boolean
    for a number type) or an integer out of the type's range is refused, not cast."""
    if isinstance(data, np.ndarray):  # numbers only, of a kind the datatype takes: `_numbers_fit`
        return _in_range(data, dtype, datatype, what)
    try:
        written = np.asarray(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"{what}: data does not fit datatype {datatype}: {exc}") from None
    if not written.size:
        return written.astype(dtype)
    if hides_booleans(written, data):
        _refuse_misfit(data, dtype, datatype, what)
    if written.dtype.kind not in _JSON_KINDS[dtype.kind]:
        # Numbers of the right types that numpy made objects or floats of (integers below 0 and above
        # 2**63 together, integers beyond 64 bits) are converted one by one.
        _refuse_misfit(data, dtype, datatype, what)
        written = _converted(data, dtype, datatype, what)
    return _in_range(written, dtype, datatype, what)


def _numbers_fit(array: np.ndarray, datatype: str) -> bool:
    """Whether a lean-read array of numbers is of a kind `datatype` takes as it is."""
    if datatype == "BYTES" or datatype in BINARY_ONLY_DATATYPES:
        return False
    return array.dtype.kind in _JSON_KINDS[numpy_dtype(datatype).kind]


def _in_range(written: np.ndarray, dtype: np.dtype, datatype: str, what: str) -> np.ndarray:
    """`written` as `dtype`; an integer out of its range is refused."""
    if dtype.kind in "iu" and not np.can_cast(written.dtype, dtype):
        limits, low, high = np.iinfo(dtype), written.min(), written.max()
        if low < limits.min or high > limits.max:
            raise _out_of_range(low if low < limits.min else high, datatype, what)
    # A number beyond a floating type's range becomes infinity, as a cast makes it.
    return written.astype(dtype, copy=False)


def _refuse_misfit(data: list, dtype: np.dtype, datatype: str, what: str) -> None:
    """InvalidInput naming the first JSON value of `data` of a type `dtype` does not take."""
    wanted = {"b": (bool,), "i": (int,), "u": (int,), "f": (int, float, type(None))}[dtype.kind]
    for value in _flatten(data):
        if not isinstance(value, wanted) or (dtype.kind != "b" and isinstance(value, bool)):
            if dtype.kind in "iu" and _beyond_64_bits(value):
                raise _out_of_range(json.dumps(value), datatype, what)
            shown = json.dumps(value)[:40]
            raise InvalidInput(
                f"{what}: data does not fit datatype {datatype}: it takes {_JSON_VALUES[dtype.kind]}, got {shown}"
            )


def _beyond_64_bits(value: object) -> bool:
    """Whether `value` is the float the JSON parser makes of an integer beyond 64 bits (below -2**63 or
    above 2**64 - 1), which no integer type holds."""
    return isinstance(value, float) and value.is_integer() and not -(2**63) < value < 2**64


def _converted(data: list, dtype: np.dtype, datatype: str, what: str) -> np.ndarray:
    try:
        return np.asarray(data, dtype=dtype)
    except OverflowError:
        limits = np.iinfo(dtype)
        value = next(v for v in _flatten(data) if not limits.min <= v <= limits.max)
        raise _out_of_range(value, datatype, what) from None


def _out_of_range(value: object, datatype: str, what: str) -> InvalidInput:
    return InvalidInput(f"{what}: data does not fit datatype {datatype}: {value} is out of its range")


class InferInput:
    """One input tensor of a V2 request."""

    __slots__ = ("name", "shape", "datatype", "parameters", "from_json", "_array", "_data")

    def __init__(
        self,
        name: str,
        shape: Sequence[int],
        datatype: str,
        data: list | np.ndarray | None = None,
        parameters: Parameters | None = None,
        from_json: bool = False,
    ):
        self.name = name
        self.shape = list(shape)
        self.datatype = datatype.upper() if isinstance(datatype, str) else datatype  # as KServe's
        self.parameters = parameters
        # Whether the request carried the data as JSON: a BYTES element was then a string (base64
        # text, often), not raw bytes, and a TorchServe handler wants to know which.
        self.from_json = from_json
        self._array: np.ndarray | None = None
        self._data: list | None = None
        if isinstance(data, np.ndarray):
            self._array = data
        else:
            self._data = data

    @property
    def data(self) -> list | None:
        """The tensor's elements as a flat or nested list, as JSON would carry them."""
        if self._data is None and self._array is not None:
            self._data = _array_to_list(self._array, self.datatype)
        return self._data

    @data.setter
    def data(self, value: list) -> None:
        self._data = value
        self._array = None

    def as_numpy(self) -> np.ndarray:
        if self._array is None:
            if self._data is None:
                raise InvalidInput(f"input {self.name!r} has no data")
            self._array = array_from_json(
                self._data, normalize_datatype(self.datatype), self.shape, f"input {self.name!r}"
            )
        return self._array

    def as_string(self) -> list[str]:
        """A BYTES tensor's elements decoded as UTF-8 strings."""
        return [item.decode() if isinstance(item, bytes) else str(item) for item in self.as_numpy().flat]

    def set_data_from_numpy(self, array: np.ndarray, binary_data: bool = True) -> None:
        # The model's own tensor that does not fit is the model's fault, not the client's: a 500, as in
        # KServe.
        if not isinstance(array, np.ndarray):
            raise InferenceError(f"input {self.name!r}: expected a numpy array, got {type(array).__name__}")
        if datatype_of(array) != self.datatype:
            raise InferenceError(
                f"input {self.name!r}: array of {array.dtype} does not match datatype {self.datatype}"
            )
        if list(array.shape) != self.shape:
            raise InferenceError(
                f"input {self.name!r}: array of shape {list(array.shape)} does not match shape {self.shape}"
            )
        self._array = array
        self._data = None
        if binary_data:
            self.parameters = {**(self.parameters or {}), "binary_data": True}

    def __eq__(self, other: object) -> bool:
        """Equal, as KServe's: the same kind of tensor (input or output), name, shape, datatype,
        parameters and values."""
        if not isinstance(other, InferInput) or isinstance(other, InferOutput) != isinstance(
            self, InferOutput
        ):
            return False
        if (self.name, self.shape, self.datatype, self.parameters) != (
            other.name,
            other.shape,
            other.datatype,
            other.parameters,
        ):
            return False
        try:
            return np.array_equal(self.as_numpy(), other.as_numpy())
        except InvalidInput:  # data that is no tensor of its datatype: compared as it was given
            return self._data == other._data and self._array is other._array

    def to_dict(self) -> dict:
        """KServe's `to_dict`: the tensor as a JSON-able dict, its data a list."""
        return {
            "name": self.name,
            "shape": self.shape,
            "datatype": self.datatype,
            "data": self.data,
            "parameters": self.parameters,
        }

    def __repr__(self) -> str:
        return f"InferInput(name={self.name!r}, shape={self.shape}, datatype={self.datatype!r})"


class InferOutput(InferInput):
    """One output tensor of a V2 response."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"InferOutput(name={self.name!r}, shape={self.shape}, datatype={self.datatype!r})"


class RequestedOutput:
    """An entry of a request's `outputs`: which output to return, and how."""

    __slots__ = ("name", "parameters")

    def __init__(self, name: str, parameters: Parameters | None = None):
        self.name = name
        self.parameters = parameters

    @property
    def binary_data(self) -> bool | None:
        if self.parameters is None:
            return None
        value = self.parameters.get("binary_data")
        return None if value is None else bool(value)

    @property
    def classification(self) -> int | None:
        """How many of the output's top classes were asked for (Triton's classification extension)."""
        return self.parameters.get("classification") if self.parameters else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RequestedOutput) and (self.name, self.parameters) == (
            other.name,
            other.parameters,
        )

    def __repr__(self) -> str:
        return f"RequestedOutput(name={self.name!r}, parameters={self.parameters!r})"


class _FromGrpc:
    """KServe's `from_grpc`, which means two things: on the class, the constructor from a gRPC message
    (`InferRequest.from_grpc(message)`); on an instance, whether it was made from one
    (`request.from_grpc`)."""

    def __init__(self, construct):
        self._construct = construct

    def __get__(self, instance, owner=None):
        if instance is None:
            return self._construct.__get__(owner)
        return instance._from_grpc

    def __set__(self, instance, value: bool) -> None:
        instance._from_grpc = value


class InferRequest:
    """A V2 inference request, decoded."""

    __slots__ = (
        "model_name",
        "model_version",
        "id",
        "parameters",
        "inputs",
        "request_outputs",
        "_from_grpc",
        "_raw_inputs",
    )

    def __init__(
        self,
        model_name: str,
        infer_inputs: list[InferInput],
        request_id: str | None = None,
        raw_inputs: Sequence[bytes] | None = None,
        from_grpc: bool = False,
        parameters: Parameters | None = None,
        request_outputs: list[RequestedOutput] | None = None,
        model_version: str | None = None,
    ):
        """KServe's arguments, in its order; `raw_inputs` are the inputs' data as gRPC's
        `raw_input_contents` carry it, one for each input."""
        self.model_name = model_name
        self.model_version = model_version
        self.id = request_id
        self.parameters = parameters
        self.inputs = infer_inputs
        self.request_outputs = request_outputs
        self.from_grpc = from_grpc
        self._raw_inputs = bool(raw_inputs)
        if raw_inputs:
            _set_raw(infer_inputs, raw_inputs, "input")

    @_FromGrpc
    def from_grpc(cls, message: Any) -> InferRequest:
        """The request a gRPC `ModelInferRequest` carries."""
        from modelplane.protocol.v2_grpc import request_from_grpc

        return request_from_grpc(message)[0]

    @classmethod
    def from_bytes(cls, req_bytes: bytes, json_length: int | None, model_name: str) -> InferRequest:
        """The request a REST /infer body carries; `json_length` is its inference-header-content-length."""
        from modelplane.protocol.v2_rest import decode_request

        return decode_request(req_bytes, json_length, model_name)

    @property
    def use_binary_outputs(self) -> bool:
        """Whether the outputs go back binary unless each says otherwise: the request's
        `binary_data_output`, or over gRPC, unsaid, whether its inputs came raw."""
        asked = (self.parameters or {}).get("binary_data_output")
        if asked is None:
            return self.from_grpc and self._raw_inputs
        return bool(asked)

    def to_rest(self) -> tuple[dict | bytes, int | None]:
        """KServe's `to_rest`: the request as a JSON-able dict and None, or, when a tensor travels binary
        (set with `set_data_from_numpy(..., binary_data=True)`, its default; FP16 or BF16; read from raw
        gRPC contents), the body and its JSON length."""
        from modelplane.protocol.v2_rest import request_document, rest_message

        document, raw_parts = request_document(self, as_to_rest=True)
        document = {"id": self.id or random_uuid(), "model_name": self.model_name, **document}
        return rest_message(document, raw_parts)

    def to_grpc(self) -> Any:
        """The request as a gRPC `ModelInferRequest` (`modelplane.protocol.grpc.inference_pb2`)."""
        from modelplane.protocol.v2_grpc import request_to_grpc

        return request_to_grpc(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InferRequest) and _fields(self, _REQUEST_FIELDS) == _fields(
            other, _REQUEST_FIELDS
        )

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "model_name": self.model_name,
            "inputs": [infer_input.to_dict() for infer_input in self.inputs],
            "parameters": self.parameters,
            "from_grpc": self.from_grpc,
        }

    def get_input_by_name(self, name: str) -> InferInput | None:
        for infer_input in self.inputs:
            if infer_input.name == name:
                return infer_input
        return None

    @property
    def content_type(self) -> str | None:
        return (self.parameters or {}).get("content_type")

    def as_dataframe(self, decoded: dict[str, Any] | None = None):
        """All inputs as the columns of a pandas DataFrame (for `content_type: pd` requests); `decoded`
        gives the values of some of them, by name, already read (by their content types)."""
        try:
            import pandas as pd
        except ImportError:
            raise InvalidInput(
                'content_type "pd" needs pandas on the server: pip install "modelplane[pandas]"'
            ) from None
        columns = {}
        for infer_input in self.inputs:
            if decoded and infer_input.name in decoded:
                columns[infer_input.name] = decoded[infer_input.name]
                continue
            array = infer_input.as_numpy()
            if infer_input.datatype == "BYTES":
                try:
                    array = np.array(infer_input.as_string(), dtype=np.object_).reshape(array.shape)
                except UnicodeDecodeError:
                    raise InvalidInput(
                        f"input {infer_input.name!r}: a BYTES column of a pd request must be UTF-8 text"
                    ) from None
            columns[infer_input.name] = array.reshape(-1)
        lengths = {name: len(column) for name, column in columns.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidInput(f'the columns of a "pd" request must be as long as each other, got {lengths}')
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        return f"InferRequest(model_name={self.model_name!r}, id={self.id!r}, inputs={self.inputs!r})"


class InferResponse:
    """A V2 inference response, before encoding."""

    __slots__ = (
        "id",
        "model_name",
        "model_version",
        "parameters",
        "outputs",
        "_from_grpc",
        "_use_binary_outputs",
        "_requested_outputs",
    )

    def __init__(
        self,
        response_id: str | None,
        model_name: str,
        infer_outputs: list[InferOutput],
        model_version: str | None = None,
        raw_outputs: Sequence[bytes] | None = None,
        from_grpc: bool = False,
        parameters: Parameters | None = None,
        use_binary_outputs: bool = False,
        requested_outputs: list[RequestedOutput] | None = None,
    ):
        """KServe's arguments, in its order. `raw_outputs` are the outputs' data as gRPC's
        `raw_output_contents` carry it; `use_binary_outputs` and `requested_outputs` say how `to_rest` and
        `to_grpc` write the outputs (the server writes its answers as their request asks)."""
        self.id = response_id or random_uuid()
        self.model_name = model_name
        self.model_version = model_version
        self.parameters = parameters
        self.outputs = infer_outputs
        self.from_grpc = from_grpc
        self._use_binary_outputs = use_binary_outputs
        self._requested_outputs = requested_outputs
        if raw_outputs:
            _set_raw(infer_outputs, raw_outputs, "output")

    @_FromGrpc
    def from_grpc(cls, message: Any) -> InferResponse:
        """The response a gRPC `ModelInferResponse` carries."""
        from modelplane.protocol.v2_grpc import response_from_grpc

        return response_from_grpc(message)

    @classmethod
    def from_rest(cls, response: dict) -> InferResponse:
        """The response a decoded REST /infer answer carries."""
        from modelplane.protocol.v2_rest import response_from_dict

        return response_from_dict(response)

    @classmethod
    def from_bytes(cls, res_bytes: bytes, json_length: int | None = None) -> InferResponse:
        """The response a REST /infer answer's body carries; `json_length` is its
        inference-header-content-length."""
        from modelplane.protocol.v2_rest import decode_response

        return decode_response(res_bytes, json_length)

    def to_rest(self) -> tuple[dict | bytes, int | None]:
        """KServe's `to_rest`: the response as a JSON-able dict and None, or, when an output travels binary
        (`use_binary_outputs`, or a requested output's `binary_data`), the body and its JSON length. It is
        what the server would answer a request for these outputs."""
        from modelplane.protocol.v2_rest import response_document, rest_message

        return rest_message(*response_document(self, self._as_asked()))

    def to_grpc(self) -> Any:
        """The response as a gRPC `ModelInferResponse` (`modelplane.protocol.grpc.inference_pb2`), its
        outputs all in `raw_output_contents` when `use_binary_outputs`, a requested output's
        `binary_data` or an output's own (`set_data_from_numpy`'s) asks for it, or one is FP16 or BF16."""
        from modelplane.protocol.v2_grpc import response_to_grpc

        flagged = any((output.parameters or {}).get("binary_data") for output in self.outputs)
        return response_to_grpc(self, self._as_asked(), raw_inputs=flagged)

    def _as_asked(self) -> InferRequest:
        """A request asking for the outputs as this response's `use_binary_outputs` and
        `requested_outputs` say."""
        parameters = {"binary_data_output": True} if self._use_binary_outputs else None
        return InferRequest(
            self.model_name, [], parameters=parameters, request_outputs=self._requested_outputs
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InferResponse) and _fields(self, _RESPONSE_FIELDS) == _fields(
            other, _RESPONSE_FIELDS
        )

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "model_name": self.model_name,
            "outputs": [output.to_dict() for output in self.outputs],
            "parameters": self.parameters,
            "from_grpc": self.from_grpc,
        }

    def with_outputs(self, outputs: list[InferOutput], response_id: str | None = None) -> InferResponse:
        """This response with other outputs (and another id, if given): the rest is kept."""
        return InferResponse(
            response_id or self.id,
            self.model_name,
            outputs,
            model_version=self.model_version,
            parameters=self.parameters,
            from_grpc=self.from_grpc,
        )

    def get_output_by_name(self, name: str) -> InferOutput | None:
        for output in self.outputs:
            if output.name == name:
                return output
        return None

    def __repr__(self) -> str:
        return f"InferResponse(model_name={self.model_name!r}, id={self.id!r}, outputs={self.outputs!r})"


# What makes two requests, or two responses, equal (as in KServe).
_REQUEST_FIELDS = ("model_name", "id", "from_grpc", "parameters", "inputs", "request_outputs")
_RESPONSE_FIELDS = ("model_name", "model_version", "id", "from_grpc", "parameters", "outputs")


def _fields(item: object, names: tuple[str, ...]) -> tuple:
    return tuple(getattr(item, name) for name in names)


def check_raw_count(tensors: Sequence, raw_contents: Sequence[bytes], kind: str) -> None:
    if raw_contents and len(raw_contents) != len(tensors):
        raise InvalidInput(
            f"the number of {kind}s ({len(tensors)}) does not match the number of raw {kind} contents "
            f"({len(raw_contents)})"
        )


def _set_raw(tensors: Sequence[InferInput], raw_contents: Sequence[bytes], kind: str) -> None:
    """Each tensor's data from its raw contents (gRPC's `raw_input_contents`, `raw_output_contents`)."""
    check_raw_count(tensors, raw_contents, kind)
    for tensor, raw in zip(tensors, raw_contents, strict=True):
        tensor._array = array_from_raw(raw, normalize_datatype(tensor.datatype), tensor.shape)
        tensor._data = None


def _array_to_list(array: np.ndarray, datatype: str) -> list:
    if datatype == "BYTES" or array.dtype.kind in "OSU":
        return [item.decode() if isinstance(item, bytes) else item for item in array.flat]
    return array.reshape(-1).tolist()


def output_from_array(name: str, array: Any) -> InferOutput:
    """An output tensor from whatever a model returned: a numpy array, a list or a scalar."""
    if not isinstance(array, np.ndarray):
        array = np.asarray(array)
    if array.dtype.kind in "SU":
        array = array.astype(np.object_)
    return InferOutput(name, array.shape, datatype_of(array), array)


def decode_outputs(raw_outputs: object, binary: memoryview | None, what: str) -> list[InferOutput]:
    """Decode a JSON `outputs` list (a model's or another server's answer), as `decode_inputs` reads inputs."""
    return [
        InferOutput(tensor.name, tensor.shape, tensor.datatype, tensor._array, tensor.parameters)
        for tensor in decode_inputs(raw_outputs, binary, what, key="outputs")
    ]


def decode_inputs(
    raw_inputs: object, binary: memoryview | None, what: str = "request", *, key: str = "inputs"
) -> list[InferInput]:
    """Decode a JSON `inputs` list (or another `key`'s list of tensors); tensors with `binary_data_size`
    are read from `binary` in order."""
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput(f"{what}: '{key}' must be a non-empty list")
    inputs = []
    offset = 0
    for index, raw in enumerate(raw_inputs):
        if not isinstance(raw, dict):
            raise InvalidInput(f"{what}: {key}[{index}] must be an object")
        name = raw.get("name")
        if not isinstance(name, str):
            raise InvalidInput(f"{what}: {key}[{index}] needs a string 'name'")
        label = f"{key[:-1]} {name!r}"
        shape = _check_shape(raw.get("shape"), label)
        datatype = normalize_datatype(raw.get("datatype"))
        parameters = check_parameters(raw.get("parameters"), label)
        check_input_parameters(parameters, label)
        size = parameters.get("binary_data_size") if parameters else None
        if size is not None:
            if binary is None:
                raise InvalidInput(
                    f"{label} has binary_data_size but the request carries no binary data "
                    "(is the inference-header-content-length header missing?)"
                )
            if type(size) is not int or size < 0:
                raise InvalidInput(f"{label}: binary_data_size must be a non-negative integer")
            if offset + size > len(binary):
                raise InvalidInput(
                    f"{label}: binary_data_size {size} runs past the end of the body "
                    f"({len(binary) - offset} bytes left)"
                )
            array = array_from_raw(binary[offset : offset + size], datatype, shape)
            offset += size
        else:
            if "data" not in raw:
                raise InvalidInput(f"{label} has no 'data'")
            array = array_from_json(raw["data"], datatype, shape, label)
        inputs.append(InferInput(name, shape, datatype, array, parameters, from_json=size is None))
    if binary is not None and offset != len(binary):
        raise InvalidInput(
            f"{what}: the inputs' binary_data_size add up to {offset} bytes "
            f"but {len(binary)} bytes of binary data were sent"
        )
    check_unique_names(inputs)
    return inputs


def check_unique_names(tensors: Sequence[InferInput | RequestedOutput], kind: str = "input") -> None:
    """Refuses a request that names one input twice (which of the two a model took would be chance), or
    asks for one output twice (Triton refuses it too: "output 'x' already requested")."""
    if len(tensors) > 1 and len({item.name for item in tensors}) < len(tensors):
        seen: set[str] = set()
        for item in tensors:
            if item.name in seen:
                raise InvalidInput(f"{kind} {item.name!r} is given twice")
            seen.add(item.name)


def decode_requested_outputs(raw_outputs: object) -> list[RequestedOutput] | None:
    if raw_outputs is None:
        return None
    if not isinstance(raw_outputs, list):
        raise InvalidInput("'outputs' must be a list")
    requested = []
    for index, raw in enumerate(raw_outputs):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise InvalidInput(f"outputs[{index}] needs a string 'name'")
        label = f"output {raw['name']!r}"
        parameters = check_parameters(raw.get("parameters"), label)
        check_output_parameters(parameters, label)
        requested.append(RequestedOutput(raw["name"], parameters))
    check_unique_names(requested, "requested output")
    return requested


def request_from_dict(document: object, model_name: str, binary: memoryview | None = None) -> InferRequest:
    """An InferRequest from a decoded JSON body (plus the binary section, if any)."""
    if not isinstance(document, dict):
        raise InvalidInput("the request body must be a JSON object")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string")
    parameters = check_parameters(document.get("parameters"), "request")
    check_request_parameters(parameters)
    return InferRequest(
        model_name=model_name,
        infer_inputs=decode_inputs(document.get("inputs"), binary),
        request_id=request_id,
        parameters=parameters,
        request_outputs=decode_requested_outputs(document.get("outputs")),
    )


def select_outputs(
    response: InferResponse, request: InferRequest | None
) -> list[tuple[InferOutput, bool | None]]:
    """The outputs to send, in order, each with its requested binary flag (None: not said)."""
    requested = request.request_outputs if request is not None else None
    if not requested:
        selected = [(output, None) for output in response.outputs]
    else:
        by_name = {output.name: output for output in response.outputs}
        selected = []
        for wanted in requested:
            output = by_name.get(wanted.name)
            if output is None:
                raise InvalidInput(
                    f"Unexpected inference output '{wanted.name}' for model '{response.model_name}'"
                )
            selected.append((output, wanted.binary_data))
    for output, _ in selected:
        _check_output(output, response.model_name)
    return selected


def _check_output(output: InferOutput, model_name: str) -> None:
    """Refuses, as the model's fault, an output no client could read: one whose datatype is not a V2
    datatype, or whose values do not fill its shape (JSON would carry it as it is, binary data and gRPC
    would fail or cut it)."""
    if output.datatype not in DATATYPES:
        raise InferenceError(
            f"model {model_name!r} answered output {output.name!r} with datatype {output.datatype!r}, "
            f"which is not one of {', '.join(DATATYPES)}"
        )
    array = output._array
    if array is not None:
        count = array.size
    elif isinstance(output._data, list):
        count = _value_count(output._data)
    else:
        return
    if count != element_count(output.shape):
        raise InferenceError(
            f"model {model_name!r} answered output {output.name!r} with {count} values for shape {output.shape}"
        )


def _value_count(data: list) -> int:
    """The values of a flat or nested list (its lists are looked at, not its values)."""
    if data and isinstance(data[0], list):
        return sum(_value_count(part) if isinstance(part, list) else 1 for part in data)
    return len(data)


def wants_binary_outputs(request: InferRequest | None) -> bool:
    return bool(request is not None and request.parameters and request.parameters.get("binary_data_output"))
