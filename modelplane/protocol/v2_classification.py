"""Triton's classification extension: a requested output with `parameters.classification` N comes back
as its top N classes instead of its tensor.

Each class is a BYTES string "<value>:<index>" or, where the model has a label for that index,
"<value>:<index>:<label>". The value is written as Triton writes it (C++'s `std::to_string`: `"%f"` for
FP32 and FP64, `0.900000`; the integer as it is for the integer types). The classes are the highest
values first; equal values keep their index order (Triton's sort leaves that order open), and NaN comes
last. An output of two or more dimensions is a batch: each entry's values (its other dimensions,
flattened) are classified on their own, and the answer has shape [batch, N]. An output of one dimension
(or none) is one set of values: shape [N]. N above the number of classes gives every class.

Only numbers can be classified: BOOL, BYTES, FP16 and BF16 outputs are refused, with Triton's message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.v2 import InferOutput, InferRequest, InferResponse

_CLASSIFIABLE = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP32", "FP64"}
)

# An output's labels by its name: the label of each index of its values, or None for none.
Labels = Callable[[str], Sequence[str] | None]


def classify_outputs(
    response: InferResponse, request: InferRequest, labels: Labels | None = None
) -> InferResponse:
    """`response` with each output the request asks to classify replaced by its classes."""
    counts = {
        wanted.name: wanted.classification
        for wanted in request.request_outputs or ()
        if wanted.classification is not None
    }
    if not counts:
        return response
    outputs = [
        classified(output, counts[output.name], labels(output.name) if labels else None)
        if output.name in counts
        else output
        for output in response.outputs
    ]
    return response.with_outputs(outputs)


def classified(output: InferOutput, count: int, labels: Sequence[str] | None = None) -> InferOutput:
    """The top `count` classes of `output`, as a BYTES output of the same name."""
    if output.datatype not in _CLASSIFIABLE:
        raise InvalidInput(
            f"class result not available for output {output.name!r} due to unsupported type '{output.datatype}'"
        )
    array = output.as_numpy()
    if array.ndim >= 2:
        batch = [array.shape[0]]
        rows = array.reshape(array.shape[0], int(np.prod(array.shape[1:])))
    else:
        batch = []
        rows = array.reshape(1, array.size)
    classes = rows.shape[1]
    kept = min(count, classes)
    order = _highest_first(rows)[:, :kept]
    values = np.take_along_axis(rows, order, axis=1)
    write = _float_text if rows.dtype.kind == "f" else _integer_text
    texts = np.empty(values.size, dtype=np.object_)
    for position, (value, index) in enumerate(zip(values.flat, order.flat, strict=True)):
        text = f"{write(value)}:{index}"
        label = labels[index] if labels is not None and index < len(labels) else None
        if label:
            text = f"{text}:{label}"
        texts[position] = text.encode()
    shape = [*batch, kept]
    return InferOutput(output.name, shape, "BYTES", texts.reshape(shape))


def _highest_first(rows: np.ndarray) -> np.ndarray:
    """The indices of each row's values, highest first, equal values in index order (NaN last)."""
    if rows.dtype.kind == "f":
        return np.argsort(-rows, axis=1, kind="stable")
    # Integers cannot all be negated (the lowest of a signed type, any unsigned): sort the row reversed
    # in ascending order, stably, and read that order backwards.
    backwards = np.argsort(rows[:, ::-1], axis=1, kind="stable")[:, ::-1]
    return rows.shape[1] - 1 - backwards


def _float_text(value: np.floating) -> str:
    return "%f" % float(value)  # noqa: UP031 - C's "%f", as Triton's std::to_string writes it


def _integer_text(value: np.integer) -> str:
    return str(int(value))
