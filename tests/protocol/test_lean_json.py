"""A large V2 JSON body's flat arrays of numbers are read a slice at a time into numpy: the same tensors
and the same refusals as the ordinary reading, in a fraction of its memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import orjson
import pytest

from modelplane.protocol import lean_json
from modelplane.protocol.errors import InvalidInput
from modelplane.protocol.v2_rest import decode_request, decode_response

ROWS = 150_000  # 600,000 numbers: a body of over a MiB, read in one slice or more


def body_of(*inputs: dict, **extra) -> bytes:
    return orjson.dumps({"inputs": list(inputs), **extra})


def tensor(name: str, data, datatype: str = "FP64", shape=None) -> dict:
    return {"name": name, "shape": shape or [len(data)], "datatype": datatype, "data": data}


def read_both(body: bytes):
    """The request as read lean and as read the ordinary way (or the message each refused it with)."""

    def read():
        try:
            request = decode_request(body, None, "m")
        except InvalidInput as refusal:
            return str(refusal)
        return [(i.name, i.shape, i.datatype, i.as_numpy()) for i in request.inputs]

    lean = read()
    saved = lean_json.LEAN_BODY_SIZE
    lean_json.LEAN_BODY_SIZE = 1 << 62
    try:
        return lean, read()
    finally:
        lean_json.LEAN_BODY_SIZE = saved


def peak(read) -> int:
    """The most memory `read()` held at once, in bytes."""
    tracemalloc.start()
    try:
        read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def assert_same(lean, ordinary) -> None:
    if isinstance(ordinary, str):
        assert lean == ordinary
        return
    assert [item[:3] for item in lean] == [item[:3] for item in ordinary]
    for (*_, left), (*_, right) in zip(lean, ordinary, strict=True):
        assert left.dtype == right.dtype and left.shape == right.shape
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize(
    "datatype, values",
    [
        ("FP64", np.random.default_rng(1).normal(size=ROWS * 4).round(7).tolist()),
        ("FP32", np.random.default_rng(2).normal(size=ROWS * 4).tolist()),
        ("INT64", np.random.default_rng(3).integers(-(2**62), 2**62, size=ROWS * 4).tolist()),
        ("INT8", np.random.default_rng(4).integers(-128, 128, size=ROWS * 4).tolist()),
        ("UINT8", np.random.default_rng(5).integers(0, 256, size=ROWS * 4).tolist()),
        ("FP16", [1.5] * ROWS * 4),  # JSON cannot carry it: refused as ever
        ("BYTES", list(range(ROWS * 4))),  # numbers for BYTES: refused as ever
        ("BOOL", [0, 1] * ROWS * 2),  # numbers for BOOL: refused as ever
        ("INT8", [127, 128] * ROWS * 2),  # out of range: refused as ever
        ("INT32", [1.5, 2] * ROWS * 2),  # a fraction for an integer type: refused as ever
    ],
)
def test_a_large_flat_array_reads_as_the_ordinary_reading_does(datatype, values):
    body = body_of(tensor("x", values, datatype, [ROWS, 4]))
    assert lean_json.load_v2(body) is not None
    assert_same(*read_both(body))


def test_integers_and_fractions_across_slices_make_one_array_of_floats():
    values = [7] * (ROWS * 2) + [0.25] * (ROWS * 2)
    lean, ordinary = read_both(body_of(tensor("x", values, "FP32")))
    assert_same(lean, ordinary)
    assert lean[0][3].dtype == np.float32


@pytest.mark.parametrize(
    "written",
    [
        b"1, 2,3 ,\n 4",  # whitespace anywhere JSON allows it
        b"1,2,3,",  # a trailing comma
        b"1,,2,3",  # nothing between two commas
        b",1,2,3",
        b"1,2,3e",  # not a number
        b"1,2,-,3",
        b"1.5e400,2",  # beyond a float: infinity, as the ordinary reading makes it
        b"99999999999999999999999,1",  # beyond 64 bits
    ],
)
def test_written_numbers_read_or_are_refused_as_the_ordinary_reading_does(written):
    repeated = b",".join([b"0.5"] * (ROWS * 2))
    for data in (written + b"," + repeated, repeated + b"," + written):
        body = b'{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP64", "data": [' + data + b"]}]}"
        lean, ordinary = read_both(body.replace(b"[-1]", b"[%d]" % (data.count(b",") + 1)))
        assert_same(lean, ordinary)


@pytest.mark.parametrize(
    "data",
    [
        [[0.5] * 4] * ROWS,  # nested
        [0.5] * (ROWS * 4 - 1) + [None],  # null: NaN for a floating type
        [0.5] * (ROWS * 4 - 1) + [True],
        [1] * (ROWS * 4 - 1) + ["1"],
    ],
)
def test_what_is_out_of_the_ordinary_is_read_the_ordinary_way(data):
    body = body_of(tensor("x", data, "FP64", [ROWS, 4]))
    assert lean_json.load_v2(body) is None
    assert_same(*read_both(body))


def test_several_inputs_small_and_large_and_data_written_in_a_string():
    large = np.arange(ROWS * 4, dtype=np.float64).tolist()
    body = body_of(
        tensor("a", [1, 2, 3], "INT32"),
        tensor("b", large, "FP64"),
        tensor("c", large[::-1], "FP32"),
        parameters={"note": '"data": [' + ",".join(["1"] * 70_000) + "]"},
    )
    lean, ordinary = read_both(body)
    assert_same(lean, ordinary)
    assert decode_request(body, None, "m").parameters["note"].startswith('"data": [1,1')


def test_a_placeholder_written_by_a_client_is_only_text():
    large = [0.5] * (ROWS * 4)
    forged = "\u0000modelplane lean data 0"
    body = body_of(tensor("a", large), {"name": "b", "shape": [1], "datatype": "BYTES", "data": forged})
    assert_same(*read_both(body))
    body = body_of({"name": "b", "shape": [1], "datatype": "FP64", "data": forged}, tensor("a", large))
    lean, ordinary = read_both(body)
    assert isinstance(lean, str) and isinstance(ordinary, str)


def test_a_response_from_a_predictor_is_read_lean_too():
    values = np.random.default_rng(6).normal(size=ROWS * 4)
    body = orjson.dumps({"model_name": "m", "outputs": [tensor("y", values.tolist(), "FP64")]})
    response = decode_response(body)
    np.testing.assert_array_equal(response.outputs[0].as_numpy(), values)


def test_a_large_body_needs_a_fraction_of_the_ordinary_memory():
    values = np.random.default_rng(7).normal(size=ROWS * 10).round(6)
    body = body_of(tensor("x", values.tolist(), "FP64", [ROWS, 10]))

    lean = peak(lambda: decode_request(body, None, "m"))
    ordinary = peak(lambda: read_both(body))  # both readings, one after the other: the ordinary's peak
    np.testing.assert_array_equal(
        decode_request(body, None, "m").inputs[0].as_numpy(), values.reshape(ROWS, 10)
    )
    assert lean < len(body) * 3, (lean, len(body))
    assert lean < ordinary / 3, (lean, ordinary)


# -- V1 instances ----------------------------------------------------------------------------------


def instances_both(body: bytes):
    """A V1 body's instances as read lean (None if it was not) and as the ordinary reading's array."""
    lean = lean_json.load_v1(body)
    ordinary = orjson.loads(body)
    return (None if lean is None else lean["instances"]), np.asarray(ordinary["instances"])


def assert_same_instances(body: bytes) -> None:
    lean, ordinary = instances_both(body)
    assert isinstance(lean, np.ndarray), "not read lean"
    assert lean.dtype == ordinary.dtype and lean.shape == ordinary.shape
    np.testing.assert_array_equal(lean, ordinary)


@pytest.mark.parametrize(
    "instances",
    [
        np.random.default_rng(8).normal(size=(ROWS, 4)).round(7).tolist(),  # rows of features
        np.random.default_rng(9).integers(-(2**62), 2**62, size=(ROWS, 4)).tolist(),
        np.random.default_rng(10).normal(size=ROWS * 4).tolist(),  # one number an instance
        np.random.default_rng(11).normal(size=(ROWS // 8, 4, 2, 4)).tolist(),  # images
        [[1, 2, 3, 4]] * (ROWS // 2) + [[0.5, 1.5, 2.5, 3.5]] * (ROWS // 2),  # integers, then fractions
        [[]] * (ROWS * 3),  # rows of nothing
    ],
)
def test_large_v1_instances_read_as_the_ordinary_reading_does(instances):
    assert_same_instances(orjson.dumps({"instances": instances}))


def test_v1_instances_pretty_printed_and_beside_other_fields():
    rows = np.random.default_rng(12).normal(size=(ROWS // 4, 3, 2)).round(5).tolist()
    body = orjson.dumps(
        {"signature_name": "serving_default", "instances": rows, "parameters": {"instances": [[1]]}},
        option=orjson.OPT_INDENT_2,
    )
    assert_same_instances(body)
    read = lean_json.load_v1(body)
    assert read["signature_name"] == "serving_default" and read["parameters"] == {"instances": [[1]]}


@pytest.mark.parametrize(
    "instances",
    [
        [[0.5] * 4] * (ROWS - 1) + [[0.5] * 3],  # ragged
        [[0.5] * 4] * (ROWS - 1) + [0.5],  # a number among rows
        [[0.5] * 4] * (ROWS - 1) + [[0.5, 0.5, 0.5, True]],
        [[0.5] * 4] * (ROWS - 1) + [[0.5, 0.5, 0.5, None]],
        [[0.5] * 4] * (ROWS - 1) + [["a", 0.5, 0.5, 0.5]],
        [[2**63] * 4] * ROWS,  # beyond a signed integer: numpy makes unsigned ones
        [{"a": 0.5}] * ROWS,  # objects
    ],
)
def test_v1_instances_out_of_the_ordinary_are_left_to_the_ordinary_reading(instances):
    assert lean_json.load_v1(orjson.dumps({"instances": instances})) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [' + b"[1,2]," * ROWS + b"[1,2]], [3]}",  # JSON only once the array is cut out
        b'{"instances": [' + b"[1,2]," * ROWS + b"[1,2]]",  # unfinished
        b'{"instances": [' + b"[1,2]," * ROWS + b"[1,2],]}",  # a trailing comma
        b'{"instances": [' + b"[1,2]," * ROWS + b"[1,2]]], 1}",
        b'[{"instances": [' + b"[1,2]," * ROWS + b"[1,2]]}]",  # not an object
        b'{"a": {"instances": [' + b"[1,2]," * ROWS + b"[1,2]]}}",  # not the request's own instances
        b'{"a": "\\"instances\\": [' + b"[1,2]," * ROWS + b'[1,2]]"}',  # written in a string
        b'{"instances": [' + b"[1,2]," * ROWS + b"[18446744073709551616,2]]}",  # beyond 64 bits
    ],
)
def test_a_v1_body_that_is_not_a_request_of_instances_is_not_read_lean(body):
    assert lean_json.load_v1(body) is None


def test_small_v1_bodies_are_read_the_ordinary_way():
    assert lean_json.load_v1(orjson.dumps({"instances": [[0.5] * 4] * 1000})) is None


def test_large_v1_instances_need_a_fraction_of_the_ordinary_memory():
    rows = np.random.default_rng(13).normal(size=(ROWS, 10)).round(6)
    body = orjson.dumps({"instances": rows.tolist()})

    lean = peak(lambda: lean_json.load_v1(body))
    ordinary = peak(lambda: np.asarray(orjson.loads(body)["instances"]))
    np.testing.assert_array_equal(lean_json.load_v1(body)["instances"], rows)
    assert lean < len(body) * 3, (lean, len(body))
    assert lean < ordinary / 3, (lean, ordinary)
